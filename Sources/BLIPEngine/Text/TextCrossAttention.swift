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

    init(_ w: WeightStore, prefix: String, config: BlipTextConfig, precision: LayerPrecision) throws(ModelError) {
        let h = config.hiddenSize, e = config.encoderHiddenSize
        query = try w.linear(prefix + ".self.query", in: h, out: h, steps: precision.steps)
        key = try precision.denseCopy(of: w.linear(prefix + ".self.key", in: e, out: h), releasingFrom: w)
        value = try precision.denseCopy(of: w.linear(prefix + ".self.value", in: e, out: h), releasingFrom: w)
        outputDense = try w.linear(prefix + ".output.dense", in: h, out: h, steps: precision.steps)
        outputLayerNorm = try w.layerNorm(prefix + ".output.LayerNorm", width: h, eps: config.layerNormEps)
        heads = config.numAttentionHeads
        headDim = config.headDim
    }

    /// features: (imageTokens, encoderHidden) → keys (heads, headDim, imageTokens) and values
    /// (heads, imageTokens, headDim): head-major, so each head's keys and values are contiguous blocks
    /// the attention streams through (token-major, a head's slice is 256 bytes every 3 KB and the step
    /// waits on memory latency instead); keys dimension-major within the head, so scores come 8 image
    /// tokens per vector operation. `scratch`: (imageTokens, hidden).
    func project(features: UnsafePointer<Float>, imageTokens: Int, scratch: UnsafeMutablePointer<Float>,
                 matmulScratch: MatmulScratch?, keys: UnsafeMutablePointer<Float>, values: UnsafeMutablePointer<Float>) {
        let h = heads * headDim
        key(features, rows: imageTokens, into: scratch, scratch: matmulScratch)
        for head in 0..<heads {
            for d in 0..<headDim {
                let row = keys + (head * headDim + d) * imageTokens, column = scratch + head * headDim + d
                for t in 0..<imageTokens { row[t] = column[t * h] }
            }
        }
        value(features, rows: imageTokens, into: scratch, scratch: matmulScratch)
        for head in 0..<heads {
            for t in 0..<imageTokens {
                (values + (head * imageTokens + t) * headDim).update(from: scratch + t * h + head * headDim, count: headDim)
            }
        }
    }

    /// x: (rows, hidden), every row of `step`, updated in place; each session's rows attend to its image.
    func callAsFunction(_ x: UnsafeMutablePointer<Float>, layer: Int, step: DecoderStep) {
        let rows = step.rows, h = heads * headDim, sc = step.scratch
        query(x, rows: rows, into: sc.query)
        let scale = 1 / Float(headDim).squareRoot()
        for part in step.parts {
            let s = part.session, first = part.firstRow
            attendAllHeads(queries: sc.query + first * h, rows: s.rows, heads: heads, headDim: headDim,
                           keys: s.crossKeys(layer: layer), keyLayout: .dimensionMajor, values: s.crossValues(layer: layer),
                           rowOffset: 0, headOffset: s.imageTokens * headDim, stride: headDim, count: s.imageTokens, scale: scale,
                           scores: sc.scores + first * heads * sc.capacitySpan, into: sc.context + first * h)
        }
        outputDense.apply(sc.context, rows: rows, xStride: h, into: x, yStride: h, accumulate: true)
        outputLayerNorm(x, rows: rows, into: x)
    }
}
