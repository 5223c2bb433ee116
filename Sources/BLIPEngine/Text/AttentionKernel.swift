import Foundation

/// Single-query attention for every head of every row: `out[r, h] = softmax(scale · K_h q_rh) · V_h`.
///
/// - queries: (rows, heads · headDim); out: same shape.
/// - keys/values: head h of row r's key j is at `keys + r · rowOffset + h · headOffset + j · stride`
///   (rowOffset 0 when all rows share the keys, as the image's cross-attention keys are).
/// - scores: scratch of rows · heads · count floats.
///
/// Heads are split across the cores; with the self-attention cache still short the work is too
/// small for that and runs on the calling thread.
func attendAllHeads(queries: UnsafePointer<Float>, rows: Int, heads: Int, headDim: Int,
                    keys: UnsafePointer<Float>, values: UnsafePointer<Float>, rowOffset: Int, headOffset: Int, stride: Int,
                    count: Int, scale: Float, scores: UnsafeMutablePointer<Float>, into out: UnsafeMutablePointer<Float>) {
    let width = heads * headDim
    let workPerHead = max(1, rows * count * headDim)
    Parallel.forChunks(count: heads, granularity: 1, minimumChunk: max(1, (1 << 15) / workPerHead)) { headRange in
        // Head outer: with shared (cross-attention) keys, every row reuses the head's block from cache.
        for head in headRange {
            for r in 0..<rows {
                let offset = r * rowOffset + head * headOffset
                attendOneHead(query: queries + r * width + head * headDim, keys: keys + offset, values: values + offset,
                              count: count, headDim: headDim, stride: stride, scale: scale,
                              scores: scores + (r * heads + head) * count, into: out + r * width + head * headDim)
            }
        }
    }
}

@inline(__always)
private func attendOneHead(query: UnsafePointer<Float>, keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
                           count: Int, headDim: Int, stride: Int, scale: Float,
                           scores: UnsafeMutablePointer<Float>, into out: UnsafeMutablePointer<Float>) {
    let vectorEnd = headDim & ~7
    // scores (count) = scale · K (count, d) · q (d)
    for j in 0..<count {
        let k = keys + j * stride
        var acc = Float8()
        var i = 0
        while i < vectorEnd { acc += k.load8(i) * query.load8(i); i += 8 }
        var s = acc.sum()
        for t in vectorEnd..<headDim { s += k[t] * query[t] }
        scores[j] = s * scale
    }
    softmaxInPlace(scores, count: count)
    // out (d) = Σ_j p_j · V_j
    out.update(repeating: 0, count: headDim)
    for j in 0..<count {
        let v = values + j * stride, p = scores[j]
        var i = 0
        while i < vectorEnd { out.store8(out.load8(i) + v.load8(i) * p, i); i += 8 }
        for t in vectorEnd..<headDim { out[t] += v[t] * p }
    }
}
