/// `crossattention` of a decoder layer: queries from the text, keys/values projected from the image
/// features (width `encoder_hidden_size` → hidden), then `LayerNorm(dense(context) + x)`.
/// The keys/values depend only on the image, so they are computed once per image (`project`) and
/// shared by every beam and every step.
struct TextCrossAttention: @unchecked Sendable {
    let query: Linear               // (hidden, hidden)
    let key: Linear, value: Linear  // (hidden, encoderHidden)
    let outputDense: Linear         // (hidden, hidden)
    let outputLayerNorm: LayerNorm
    let heads: Int, headDim: Int

    init(_ w: WeightStore, prefix: String, config: BlipTextConfig) throws(ModelError) {
        let h = config.hiddenSize, e = config.encoderHiddenSize
        query = try w.linear(prefix + ".self.query", in: h, out: h)
        key = try w.linear(prefix + ".self.key", in: e, out: h)
        value = try w.linear(prefix + ".self.value", in: e, out: h)
        outputDense = try w.linear(prefix + ".output.dense", in: h, out: h)
        outputLayerNorm = try w.layerNorm(prefix + ".output.LayerNorm", width: h, eps: config.layerNormEps)
        heads = config.numAttentionHeads
        headDim = config.headDim
    }

    /// features: (imageTokens, encoderHidden) → keys, values: (imageTokens, hidden).
    func project(features: UnsafePointer<Float>, imageTokens: Int,
                 keys: UnsafeMutablePointer<Float>, values: UnsafeMutablePointer<Float>) {
        key(features, rows: imageTokens, into: keys)
        value(features, rows: imageTokens, into: values)
    }

    /// x: (rows, hidden), updated in place.
    func callAsFunction(_ x: UnsafeMutablePointer<Float>, layer: Int, s: DecoderSession) {
        let rows = s.rows, h = heads * headDim
        query(x, rows: rows, into: s.query)
        let scale = 1 / Float(headDim).squareRoot()
        let keys = s.crossKeys(layer: layer), values = s.crossValues(layer: layer)
        for r in 0..<rows {
            for head in 0..<heads {
                attendOneQuery(query: s.query + r * h + head * headDim,
                               keys: keys + head * headDim, values: values + head * headDim,
                               count: s.imageTokens, headDim: headDim, stride: h, scale: scale,
                               scores: s.scores, into: s.context + r * h + head * headDim)
            }
        }
        outputDense.apply(s.context, rows: rows, xStride: h, into: x, yStride: h, accumulate: true)
        outputLayerNorm(x, rows: rows, into: x)
    }
}
