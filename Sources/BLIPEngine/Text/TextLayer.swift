/// `text_decoder.bert.encoder.layer.N`: causal self-attention, cross-attention to the image, and the
/// feed-forward block `LayerNorm(output.dense(gelu(intermediate.dense(x))) + x)`.
struct TextLayer: @unchecked Sendable {
    let selfAttention: TextSelfAttention
    let crossAttention: TextCrossAttention
    let intermediate: Linear  // (intermediate, hidden)
    let output: Linear        // (hidden, intermediate)
    let outputLayerNorm: LayerNorm

    init(_ w: WeightStore, prefix: String, config: BlipTextConfig) throws(ModelError) {
        let h = config.hiddenSize, m = config.intermediateSize
        selfAttention = try TextSelfAttention(w, prefix: prefix + ".attention", config: config)
        crossAttention = try TextCrossAttention(w, prefix: prefix + ".crossattention", config: config)
        intermediate = try w.linear(prefix + ".intermediate.dense", in: h, out: m)
        output = try w.linear(prefix + ".output.dense", in: m, out: h)
        outputLayerNorm = try w.layerNorm(prefix + ".output.LayerNorm", width: h, eps: config.layerNormEps)
    }

    func callAsFunction(_ x: UnsafeMutablePointer<Float>, layer: Int, s: DecoderSession) {
        selfAttention(x, layer: layer, s: s)
        crossAttention(x, layer: layer, s: s)
        let rows = s.rows
        intermediate(x, rows: rows, into: s.ffn)
        gelu(s.ffn, count: rows * intermediate.outFeatures)
        output.apply(s.ffn, rows: rows, xStride: intermediate.outFeatures, into: x, yStride: output.outFeatures, accumulate: true)
        outputLayerNorm(x, rows: rows, into: x)
    }
}
