/// `vision_model.encoder.layers.N`: pre-LN transformer block,
/// `x + attn(LN1(x))`, then `x + fc2(gelu(fc1(LN2(x))))`.
struct VisionEncoderLayer: @unchecked Sendable {
    let layerNorm1: LayerNorm
    let attention: VisionAttention
    let layerNorm2: LayerNorm
    let fc1: Linear  // (intermediate, hidden)
    let fc2: Linear  // (hidden, intermediate)

    init(_ w: WeightStore, prefix: String, config: BlipVisionConfig, precision: LayerPrecision) throws(ModelError) {
        let h = config.hiddenSize, m = config.intermediateSize, eps = config.layerNormEps
        layerNorm1 = try w.layerNorm(prefix + ".layer_norm1", width: h, eps: eps)
        attention = try VisionAttention(w, prefix: prefix + ".self_attn", config: config, precision: precision)
        layerNorm2 = try w.layerNorm(prefix + ".layer_norm2", width: h, eps: eps)
        fc1 = try precision.imageProduct(w.linear(prefix + ".mlp.fc1", in: h, out: m), store: w)
        fc2 = try precision.imageProduct(w.linear(prefix + ".mlp.fc2", in: m, out: h), store: w)
    }

    /// Updates the first `t` rows of x (tokens, hidden) in place using the scratch buffers of
    /// `state`; `t` is at most `state.tokens` (fewer only for `VisionEncoder.encode`'s warm-up use).
    func callAsFunction(_ x: UnsafeMutablePointer<Float>, tokens t: Int, state: VisionState) {
        layerNorm1(x, rows: t, into: state.normed)
        let matmul = state.matmulScratch(for: fc1)
        attention(state.normed, tokens: t, residual: x, qkvOut: state.qkv, scores: state.scores, context: state.context,
                  matmul: matmul)
        layerNorm2(x, rows: t, into: state.normed)
        fc1(state.normed, rows: t, into: state.mlp, then: .gelu, scratch: matmul)
        fc2.apply(state.mlp, rows: t, xStride: fc1.outFeatures, into: x, yStride: fc2.outFeatures, accumulate: true,
                  scratch: matmul)
    }
}
