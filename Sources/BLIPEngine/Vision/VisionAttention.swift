import COpenBLAS

/// `self_attn` of a vision layer: fused qkv projection, softmax(q·kᵀ·head_dim^-0.5)·v per head, then
/// the output projection. Bidirectional: every token sees every token.
struct VisionAttention: @unchecked Sendable {
    let qkv: Linear         // (3·hidden, hidden): rows are [q | k | v], each split into heads
    let projection: Linear  // (hidden, hidden)
    let heads: Int
    let headDim: Int

    init(_ w: WeightStore, prefix: String, config: BlipVisionConfig, precision: LayerPrecision) throws(ModelError) {
        let h = config.hiddenSize
        qkv = try precision.imageProduct(w.linear(prefix + ".qkv", in: h, out: 3 * h), store: w)
        projection = try precision.imageProduct(w.linear(prefix + ".projection", in: h, out: h), store: w)
        heads = config.numAttentionHeads
        headDim = config.headDim
    }

    /// x: (tokens, hidden) normalised input; adds the attention output to `residual` (tokens, hidden).
    /// Scratch: qkvOut (tokens, 3·hidden), scores (workers, tokens, tokens), context (tokens, hidden);
    /// `matmul` for the oneDNN products (bf16, int8).
    func callAsFunction(_ x: UnsafePointer<Float>, tokens t: Int, residual: UnsafeMutablePointer<Float>,
                        qkvOut: UnsafeMutablePointer<Float>, scores: UnsafeMutablePointer<Float>,
                        context: UnsafeMutablePointer<Float>, matmul: MatmulScratch?) {
        let hidden = heads * headDim
        qkv(x, rows: t, into: qkvOut, scratch: matmul)
        let scale = 1 / Float(headDim).squareRoot()
        // Heads are split across the cores; each worker has its own (t, t) score matrix.
        Parallel.forChunks(count: heads, granularity: 1, minimumChunk: 1) { worker, headRange in
            let scores = scores + worker * t * t
            for head in headRange {
                let q = qkvOut + head * headDim
                let k = qkvOut + hidden + head * headDim
                let v = qkvOut + 2 * hidden + head * headDim
                // scores (t, t) = scale · q (t, d) · kᵀ
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(t), Int32(t), Int32(headDim),
                            scale, q, Int32(3 * hidden), k, Int32(3 * hidden), 0, scores, Int32(t))
                for r in 0..<t { softmaxInPlace(scores + r * t, count: t) }
                // context[:, head] (t, d) = scores (t, t) · v (t, d)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(t), Int32(headDim), Int32(t),
                            1, scores, Int32(t), v, Int32(3 * hidden), 0, context + head * headDim, Int32(hidden))
            }
        }
        projection.apply(context, rows: t, xStride: hidden, into: residual, yStride: hidden, accumulate: true, scratch: matmul)
    }
}
