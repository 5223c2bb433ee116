/// `text_decoder.bert.encoder.layer.N`: causal self-attention, cross-attention to the image, and the
/// feed-forward block `LayerNorm(output.dense(gelu(intermediate.dense(x))) + x)`.
struct TextLayer: @unchecked Sendable {
    let selfAttention: TextSelfAttention
    let crossAttention: TextCrossAttention
    let intermediate: Linear  // (intermediate, hidden)
    let output: Linear        // (hidden, intermediate)
    let outputLayerNorm: LayerNorm

    init(_ w: WeightStore, prefix: String, config: BlipTextConfig, precision: LayerPrecision) throws(ModelError) {
        let h = config.hiddenSize, m = config.intermediateSize
        selfAttention = try TextSelfAttention(w, prefix: prefix + ".attention", config: config, precision: precision)
        crossAttention = try TextCrossAttention(w, prefix: prefix + ".crossattention", config: config, precision: precision)
        intermediate = try w.linear(prefix + ".intermediate.dense", in: h, out: m, steps: precision.steps)
        output = try w.linear(prefix + ".output.dense", in: m, out: h, steps: precision.steps)
        outputLayerNorm = try w.layerNorm(prefix + ".output.LayerNorm", width: h, eps: config.layerNormEps)
    }

    /// x: (rows, hidden), every row of `step`, updated in place.
    func callAsFunction(_ x: UnsafeMutablePointer<Float>, layer: Int, step: DecoderStep) {
        selfAttention(x, layer: layer, step: step)
        crossAttention(x, layer: layer, step: step)
        let rows = step.rows, ffn = step.scratch.ffn
        intermediate(x, rows: rows, into: ffn, then: .gelu)
        output.apply(ffn, rows: rows, xStride: intermediate.outFeatures, into: x, yStride: output.outFeatures, accumulate: true)
        outputLayerNorm(x, rows: rows, into: x)
    }
}
