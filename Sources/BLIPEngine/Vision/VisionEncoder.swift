/// `BlipVisionModel`: embeddings → pre-LN ViT layers → `post_layernorm` over every token.
/// Its output, (1 + patches) × hidden, is what the text decoder cross-attends to.
public struct VisionEncoder: @unchecked Sendable {
    // @unchecked: immutable after loading; weights are kept alive by the owning model.
    public let config: BlipVisionConfig
    let embeddings: VisionEmbeddings
    let layers: [VisionEncoderLayer]
    let postLayerNorm: LayerNorm

    init(_ w: WeightStore, prefix: String = "vision_model", config: BlipVisionConfig,
         precision: LayerPrecision = .float32) throws(ModelError) {
        self.config = config
        embeddings = try VisionEmbeddings(w, prefix: prefix + ".embeddings", config: config)
        var layers: [VisionEncoderLayer] = []
        for i in 0..<config.numHiddenLayers {
            layers.append(try VisionEncoderLayer(w, prefix: "\(prefix).encoder.layers.\(i)", config: config,
                                                  precision: precision))
        }
        self.layers = layers
        postLayerNorm = try w.layerNorm(prefix + ".post_layernorm", width: config.hiddenSize, eps: config.layerNormEps)
    }

    /// The model's forward pass. pixels: (3, S, S); features: (tokens, hidden). Allocates nothing:
    /// all scratch is in `state`.
    public func encode(pixels: UnsafePointer<Float>, into features: UnsafeMutablePointer<Float>, state: VisionState) {
        encode(pixels: pixels, into: features, state: state, tokens: config.tokenCount)
    }

    /// The forward pass over the first `tokens` tokens only (the class token, then patches in raster
    /// order): the encoder layers and the post-layernorm run on those rows, and only those rows of
    /// `features` are written. The embeddings are still computed for every patch (cheap).
    ///
    /// With `tokens == config.tokenCount` this is `encode(pixels:into:state:)`. With fewer it is *not*
    /// the model's output for any image (the kept tokens attend only to each other); it exists so that
    /// a warm-up can run every layer, and so read every weight, at a fraction of the cost
    /// (`Captioner.warmUp`).
    /// - Precondition: `1 <= tokens <= config.tokenCount`.
    public func encode(pixels: UnsafePointer<Float>, into features: UnsafeMutablePointer<Float>, state: VisionState,
                       tokens t: Int) {
        precondition((1...state.tokens).contains(t), "vision tokens \(t) outside 1...\(state.tokens)")
        embed(pixels: pixels, state: state)
        for i in layers.indices { runLayer(i, state: state, tokens: t) }
        finish(into: features, state: state, tokens: t)
    }

    // The forward pass in stages, so that a scheduler can stop between them (`DecodeLoop`).

    /// Stage 1: patch embedding, class token and positions into `state.hidden`.
    func embed(pixels: UnsafePointer<Float>, state: VisionState) {
        embeddings(pixels: pixels, patches: state.patches, into: state.hidden)
    }

    /// Stage 2, once per layer in order: encoder layer `index` on the first `tokens` rows of `state.hidden`.
    func runLayer(_ index: Int, state: VisionState, tokens: Int? = nil) {
        layers[index](state.hidden, tokens: tokens ?? state.tokens, state: state)
    }

    /// Stage 3: `post_layernorm` of the first `tokens` rows into `features`.
    func finish(into features: UnsafeMutablePointer<Float>, state: VisionState, tokens: Int? = nil) {
        postLayerNorm(state.hidden, rows: tokens ?? state.tokens, into: features)
    }
}

/// Scratch memory for one vision forward pass, sized from the config once and reused per image.
public final class VisionState: @unchecked Sendable {
    // @unchecked: used by one task at a time (the caller owns it).
    let tokens: Int
    private let buffers: [FloatBuffer]
    let patches: UnsafeMutablePointer<Float>  // (patches, 3·p·p)
    let hidden: UnsafeMutablePointer<Float>   // (tokens, hidden): the residual stream
    let normed: UnsafeMutablePointer<Float>   // (tokens, hidden)
    let qkv: UnsafeMutablePointer<Float>      // (tokens, 3·hidden)
    let scores: UnsafeMutablePointer<Float>   // (workers, tokens, tokens): one head per worker at a time
    let context: UnsafeMutablePointer<Float>  // (tokens, hidden)
    let mlp: UnsafeMutablePointer<Float>      // (tokens, intermediate)
    private let productInputs: Int, productOutputs: Int
    /// The oneDNN products' buffers, made when a layer first needs them (bf16, int8).
    private var matmul: MatmulScratch?

    public init(config c: BlipVisionConfig) {
        let t = c.tokenCount, h = c.hiddenSize
        tokens = t
        productInputs = max(h, c.intermediateSize)
        productOutputs = max(3 * h, c.intermediateSize)
        let sizes = [(t - 1) * 3 * c.patchSize * c.patchSize, t * h, t * h, t * 3 * h, Parallel.available * t * t, t * h, t * c.intermediateSize]
        buffers = sizes.map { FloatBuffer(count: $0) }
        (patches, hidden, normed, qkv, scores, context, mlp) =
            (buffers[0].pointer, buffers[1].pointer, buffers[2].pointer, buffers[3].pointer,
             buffers[4].pointer, buffers[5].pointer, buffers[6].pointer)
    }

    /// The buffers `linear`'s oneDNN products use, or nil when it has none (float32).
    func matmulScratch(for linear: Linear) -> MatmulScratch? {
        guard linear.dense != nil else { return nil }
        if let matmul { return matmul }
        let made = MatmulScratch(rows: tokens, maxInputs: productInputs, maxOutputs: productOutputs)
        matmul = made
        return made
    }
}
