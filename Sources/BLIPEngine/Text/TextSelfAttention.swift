/// `attention` of a decoder layer: causal self-attention over the cached keys/values of the row's own
/// sequence, then `LayerNorm(dense(context) + x)` (post-LN, BERT style).
struct TextSelfAttention: @unchecked Sendable {
    let query: Linear, key: Linear, value: Linear  // each (hidden, hidden)
    let outputDense: Linear                        // (hidden, hidden)
    let outputLayerNorm: LayerNorm
    let heads: Int, headDim: Int

    init(_ w: WeightStore, prefix: String, config: BlipTextConfig, precision: LayerPrecision) throws(ModelError) {
        let h = config.hiddenSize
        query = try w.linear(prefix + ".self.query", in: h, out: h, steps: precision.steps)
        key = try w.linear(prefix + ".self.key", in: h, out: h, steps: precision.steps)
        value = try w.linear(prefix + ".self.value", in: h, out: h, steps: precision.steps)
        outputDense = try w.linear(prefix + ".output.dense", in: h, out: h, steps: precision.steps)
        outputLayerNorm = try w.layerNorm(prefix + ".output.LayerNorm", width: h, eps: config.layerNormEps)
        heads = config.numAttentionHeads
        headDim = config.headDim
    }

    /// x: (rows, hidden), every row of `step`, updated in place. Each session's new key/value rows
    /// go into its cache at its position; its rows attend to positions 0…position of their own sequence.
    func callAsFunction(_ x: UnsafeMutablePointer<Float>, layer: Int, step: DecoderStep) {
        let rows = step.rows, h = heads * headDim, sc = step.scratch
        query(x, rows: rows, into: sc.query)
        key(x, rows: rows, into: sc.newKeys)
        value(x, rows: rows, into: sc.newValues)
        let scale = 1 / Float(headDim).squareRoot()
        for part in step.parts {
            let s = part.session, position = s.length, first = part.firstRow
            let cacheRowStride = s.capacityLength * h
            for r in 0..<s.rows {
                s.keyCache(layer: layer, row: r, position: position).update(from: sc.newKeys + (first + r) * h, count: h)
                s.valueCache(layer: layer, row: r, position: position).update(from: sc.newValues + (first + r) * h, count: h)
            }
            attendAllHeads(queries: sc.query + first * h, rows: s.rows, heads: heads, headDim: headDim,
                           keys: s.keyCache(layer: layer, row: 0, position: 0), values: s.valueCache(layer: layer, row: 0, position: 0),
                           rowOffset: cacheRowStride, headOffset: headDim, stride: h, count: position + 1, scale: scale,
                           scores: sc.scores + first * heads * sc.capacitySpan, into: sc.context + first * h)
        }
        outputDense.apply(sc.context, rows: rows, xStride: h, into: x, yStride: h, accumulate: true)
        outputLayerNorm(x, rows: rows, into: x)
    }
}
