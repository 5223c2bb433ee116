/// `BlipTextLMHeadModel`: the BERT-style caption decoder. Embeddings → post-LN layers (causal
/// self-attention, cross-attention to the image, feed-forward) → LM head.
public struct TextDecoder: @unchecked Sendable {
    // @unchecked: immutable after loading; weights are kept alive by the owning model.
    public let config: BlipTextConfig
    let embeddings: TextEmbeddings
    let layers: [TextLayer]
    let head: LMHead

    /// - Parameter precision: the copies decode steps read of every matrix (bf16, int8), and the
    ///   oneDNN form of the cross-attention keys' and values' projections.
    init(_ w: WeightStore, prefix: String = "text_decoder", config: BlipTextConfig, tieWordEmbeddings: Bool,
         precision: LayerPrecision = .float32) throws(ModelError) {
        self.config = config
        embeddings = try TextEmbeddings(w, prefix: prefix + ".bert.embeddings", config: config)
        var layers: [TextLayer] = []
        for i in 0..<config.numHiddenLayers {
            layers.append(try TextLayer(w, prefix: "\(prefix).bert.encoder.layer.\(i)", config: config, precision: precision))
        }
        self.layers = layers
        head = try LMHead(w, prefix: prefix + ".cls.predictions", config: config, tied: tieWordEmbeddings,
                          wordEmbeddings: embeddings.wordEmbeddings, precision: precision)
    }

    /// Runs one position for every row of every session in `step`: embeds the tokens (each session
    /// at its own position), updates each session's KV cache, writes (rows, vocab) logits into
    /// `step.scratch.logits` and advances every session by one position.
    func forward(_ step: DecoderStep) {
        let x = step.scratch.hidden
        for part in step.parts {
            embeddings(part.tokens, position: part.session.length, into: x + part.firstRow * config.hiddenSize)
        }
        for (i, layer) in layers.enumerated() { layer(x, layer: i, step: step) }
        head(x, rows: step.rows, scratch: step.scratch.query, into: step.scratch.logits)
        for part in step.parts { part.session.advance() }
    }
}
