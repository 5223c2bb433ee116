import Foundation

/// `BlipVisionConfig`: the ViT image encoder. Defaults are transformers' for every absent key.
public struct BlipVisionConfig: Sendable, Equatable, Decodable {
    public var hiddenSize = 768
    public var intermediateSize = 3072
    public var numHiddenLayers = 12
    public var numAttentionHeads = 12
    public var imageSize = 384
    public var patchSize = 16
    public var hiddenAct = "gelu"
    public var layerNormEps: Float = 1e-5

    enum CodingKeys: String, CodingKey {
        case hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
        case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case imageSize = "image_size", patchSize = "patch_size", hiddenAct = "hidden_act"
        case layerNormEps = "layer_norm_eps"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? hiddenSize
        intermediateSize = try c.decodeIfPresent(Int.self, forKey: .intermediateSize) ?? intermediateSize
        numHiddenLayers = try c.decodeIfPresent(Int.self, forKey: .numHiddenLayers) ?? numHiddenLayers
        numAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .numAttentionHeads) ?? numAttentionHeads
        imageSize = try c.decodeSquareSize(forKey: .imageSize) ?? imageSize
        patchSize = try c.decodeSquareSize(forKey: .patchSize) ?? patchSize
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? hiddenAct
        layerNormEps = try c.decodeIfPresent(Float.self, forKey: .layerNormEps) ?? layerNormEps
    }

    public var headDim: Int { hiddenSize / numAttentionHeads }
    public var patchesPerSide: Int { imageSize / patchSize }
    /// Class token + one token per patch: the rows of the vision features.
    public var tokenCount: Int { 1 + patchesPerSide * patchesPerSide }
}

/// `BlipTextConfig`: the BERT-style caption decoder. Defaults are transformers' for every absent key.
public struct BlipTextConfig: Sendable, Equatable, Decodable {
    public var vocabSize = 30524
    public var hiddenSize = 768
    public var encoderHiddenSize = 768
    public var intermediateSize = 3072
    public var numHiddenLayers = 12
    public var numAttentionHeads = 8
    public var maxPositionEmbeddings = 512
    public var hiddenAct = "gelu"
    public var layerNormEps: Float = 1e-12
    public var bosTokenID: Int32 = 30522
    public var padTokenID: Int32 = 0
    public var sepTokenID: Int32 = 102

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", hiddenSize = "hidden_size", encoderHiddenSize = "encoder_hidden_size"
        case intermediateSize = "intermediate_size", numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads", maxPositionEmbeddings = "max_position_embeddings"
        case hiddenAct = "hidden_act", layerNormEps = "layer_norm_eps"
        case bosTokenID = "bos_token_id", padTokenID = "pad_token_id", sepTokenID = "sep_token_id"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        vocabSize = try c.decodeIfPresent(Int.self, forKey: .vocabSize) ?? vocabSize
        hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? hiddenSize
        encoderHiddenSize = try c.decodeIfPresent(Int.self, forKey: .encoderHiddenSize) ?? encoderHiddenSize
        intermediateSize = try c.decodeIfPresent(Int.self, forKey: .intermediateSize) ?? intermediateSize
        numHiddenLayers = try c.decodeIfPresent(Int.self, forKey: .numHiddenLayers) ?? numHiddenLayers
        numAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .numAttentionHeads) ?? numAttentionHeads
        maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? maxPositionEmbeddings
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? hiddenAct
        layerNormEps = try c.decodeIfPresent(Float.self, forKey: .layerNormEps) ?? layerNormEps
        // `null` in config.json means "none"; BLIP generation needs all three, so keep the defaults.
        bosTokenID = (try? c.decodeIfPresent(Int32.self, forKey: .bosTokenID)) ?? bosTokenID
        padTokenID = (try? c.decodeIfPresent(Int32.self, forKey: .padTokenID)) ?? padTokenID
        sepTokenID = (try? c.decodeIfPresent(Int32.self, forKey: .sepTokenID)) ?? sepTokenID
    }

    public var headDim: Int { hiddenSize / numAttentionHeads }
}

/// `BlipConfig` as stored in a checkpoint's config.json. The hub file stores only non-default values,
/// so every absent key takes transformers' default.
public struct BlipConfig: Sendable, Equatable, Decodable {
    public var vision = BlipVisionConfig()
    public var text = BlipTextConfig()
    public var tieWordEmbeddings = true

    enum CodingKeys: String, CodingKey {
        case vision = "vision_config", text = "text_config", tieWordEmbeddings = "tie_word_embeddings"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        vision = try c.decodeIfPresent(BlipVisionConfig.self, forKey: .vision) ?? vision
        text = try c.decodeIfPresent(BlipTextConfig.self, forKey: .text) ?? text
        tieWordEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings) ?? tieWordEmbeddings
        // BlipConfig.__init__ forces the decoder's cross-attention input width to the vision width.
        text.encoderHiddenSize = vision.hiddenSize
    }

    /// Reads and checks `config.json`.
    public static func load(from url: URL) throws(ModelError) -> BlipConfig {
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw .missingFile(url.path) }
        let config: BlipConfig
        do { config = try JSONDecoder().decode(BlipConfig.self, from: data) } catch {
            throw .badConfig(url.path, "\(error)")
        }
        try config.validate(path: url.path)
        return config
    }

    func validate(path: String) throws(ModelError) {
        func require(_ ok: Bool, _ what: String) throws(ModelError) {
            if !ok { throw .badConfig(path, what) }
        }
        let v = vision, t = text
        for (name, value) in [("vision hidden_size", v.hiddenSize), ("vision intermediate_size", v.intermediateSize),
                              ("vision num_hidden_layers", v.numHiddenLayers), ("vision num_attention_heads", v.numAttentionHeads),
                              ("image_size", v.imageSize), ("patch_size", v.patchSize),
                              ("text hidden_size", t.hiddenSize), ("text intermediate_size", t.intermediateSize),
                              ("text num_hidden_layers", t.numHiddenLayers), ("text num_attention_heads", t.numAttentionHeads),
                              ("vocab_size", t.vocabSize), ("max_position_embeddings", t.maxPositionEmbeddings)] {
            try require(value > 0 && value <= 1 << 20, "\(name) = \(value) must be between 1 and 1048576")
        }
        try require(v.hiddenSize % v.numAttentionHeads == 0, "vision hidden_size \(v.hiddenSize) is not a multiple of num_attention_heads \(v.numAttentionHeads)")
        try require(t.hiddenSize % t.numAttentionHeads == 0, "text hidden_size \(t.hiddenSize) is not a multiple of num_attention_heads \(t.numAttentionHeads)")
        try require(v.imageSize % v.patchSize == 0, "image_size \(v.imageSize) is not a multiple of patch_size \(v.patchSize)")
        for id in [t.bosTokenID, t.padTokenID, t.sepTokenID] {
            try require(id >= 0 && Int(id) < t.vocabSize, "special token id \(id) is outside the vocabulary of \(t.vocabSize)")
        }
        for act in [v.hiddenAct, t.hiddenAct] where act != "gelu" {
            throw .unsupported("hidden_act \"\(act)\" in \(path): only \"gelu\" (exact erf GELU, BLIP's activation) is implemented")
        }
    }
}

extension KeyedDecodingContainer {
    /// `image_size`/`patch_size` may be an int or a `[h, w]` pair; BLIP uses squares.
    func decodeSquareSize(forKey key: Key) throws -> Int? {
        if let value = try? decodeIfPresent(Int.self, forKey: key) { return value }
        guard let pair = try decodeIfPresent([Int].self, forKey: key) else { return nil }
        guard pair.count == 2, pair[0] == pair[1] else {
            throw DecodingError.dataCorruptedError(forKey: key, in: self, debugDescription: "\(key.stringValue) \(pair) must be square")
        }
        return pair[0]
    }
}
