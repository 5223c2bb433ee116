/// `attention` of a decoder layer: causal self-attention over the cached keys/values of the row's own
/// sequence, then `LayerNorm(dense(context) + x)` (post-LN, BERT style).
struct TextSelfAttention: @unchecked Sendable {
    let query: Linear, key: Linear, value: Linear  // each (hidden, hidden)
    let outputDense: Linear                        // (hidden, hidden)
    let outputLayerNorm: LayerNorm
    let heads: Int, headDim: Int

    init(_ w: WeightStore, prefix: String, config: BlipTextConfig) throws(ModelError) {
        let h = config.hiddenSize
        query = try w.linear(prefix + ".self.query", in: h, out: h)
        key = try w.linear(prefix + ".self.key", in: h, out: h)
        value = try w.linear(prefix + ".self.value", in: h, out: h)
        outputDense = try w.linear(prefix + ".output.dense", in: h, out: h)
        outputLayerNorm = try w.layerNorm(prefix + ".output.LayerNorm", width: h, eps: config.layerNormEps)
        heads = config.numAttentionHeads
        headDim = config.headDim
    }

    /// x: (rows, hidden), updated in place. The new key/value rows are written into the cache at
    /// `position`; attention covers positions 0…position.
    func callAsFunction(_ x: UnsafeMutablePointer<Float>, layer: Int, s: DecoderSession) {
        let rows = s.rows, h = heads * headDim, position = s.length
        let cacheRowStride = s.capacityLength * h
        query(x, rows: rows, into: s.query)
        key.apply(x, rows: rows, xStride: h, into: s.keyCache(layer: layer, row: 0, position: position), yStride: cacheRowStride)
        value.apply(x, rows: rows, xStride: h, into: s.valueCache(layer: layer, row: 0, position: position), yStride: cacheRowStride)
        let scale = 1 / Float(headDim).squareRoot()
        attendAllHeads(queries: s.query, rows: rows, heads: heads, headDim: headDim,
                       keys: s.keyCache(layer: layer, row: 0, position: 0), values: s.valueCache(layer: layer, row: 0, position: 0),
                       rowOffset: cacheRowStride, headOffset: headDim, stride: h, count: position + 1, scale: scale, scores: s.scores, into: s.context)
        outputDense.apply(s.context, rows: rows, xStride: h, into: x, yStride: h, accumulate: true)
        outputLayerNorm(x, rows: rows, into: x)
    }
}
