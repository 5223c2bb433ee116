import Foundation

/// Single-query attention for every head of every row: `out[r, h] = softmax(scale · K_h q_rh) · V_h`.
///
/// - queries: (rows, heads · headDim); out: same shape.
/// - keys/values: head h of row r's value j is at `values + r · rowOffset + h · headOffset + j · stride`
///   (rowOffset 0 when all rows share them, as the image's cross-attention keys/values are); its
///   key is laid out the same way (`.tokenMajor`), or the head's keys are one (headDim, count) block
///   at `keys + r · rowOffset + h · headOffset` (`.dimensionMajor`: the image's keys, so that the
///   scores of 8 keys come from one vector multiply-add per dimension, no horizontal sums).
/// - scores: scratch of rows · heads · count floats.
///
/// Heads are split across the cores; with the self-attention cache still short the work is too
/// small for that and runs on the calling thread.
func attendAllHeads(queries: UnsafePointer<Float>, rows: Int, heads: Int, headDim: Int,
                    keys: UnsafePointer<Float>, keyLayout: KeyLayout = .tokenMajor,
                    values: UnsafePointer<Float>, rowOffset: Int, headOffset: Int, stride: Int,
                    count: Int, scale: Float, scores: UnsafeMutablePointer<Float>, into out: UnsafeMutablePointer<Float>) {
    let width = heads * headDim
    let workPerHead = max(1, rows * count * headDim)
    Parallel.forChunks(count: heads, granularity: 1, minimumChunk: max(1, (1 << 15) / workPerHead)) { headRange in
        // Head outer: with shared (cross-attention) keys, every row reuses the head's block from cache.
        for head in headRange {
            for r in 0..<rows {
                let offset = r * rowOffset + head * headOffset
                attendOneHead(query: queries + r * width + head * headDim, keys: keys + offset, keyLayout: keyLayout, values: values + offset,
                              count: count, headDim: headDim, stride: stride, scale: scale,
                              scores: scores + (r * heads + head) * count, into: out + r * width + head * headDim)
            }
        }
    }
}

/// How one head's keys are stored (see ``attendAllHeads``).
enum KeyLayout { case tokenMajor, dimensionMajor }

@inline(__always)
private func attendOneHead(query: UnsafePointer<Float>, keys: UnsafePointer<Float>, keyLayout: KeyLayout,
                           values: UnsafePointer<Float>, count: Int, headDim: Int, stride: Int, scale: Float,
                           scores: UnsafeMutablePointer<Float>, into out: UnsafeMutablePointer<Float>) {
    switch keyLayout {
    case .tokenMajor:
        // scores (count) = scale · K (count, d) · q (d)
        let vectorEnd = headDim & ~7
        for j in 0..<count {
            let k = keys + j * stride
            var acc = Float8()
            var i = 0
            while i < vectorEnd { acc.addProduct(k.load8(i), query.load8(i)); i += 8 }
            var s = acc.sum()
            for t in vectorEnd..<headDim { s += k[t] * query[t] }
            scores[j] = s * scale
        }
    case .dimensionMajor:
        // scores (count) = scale · Kᵀ (d, count) · q (d), 32 then 8 keys at a time in registers.
        var j = 0
        while j + 32 <= count {
            var a0 = Float8(), a1 = Float8(), a2 = Float8(), a3 = Float8()
            for d in 0..<headDim {
                let q = Float8(repeating: query[d]), k = keys + d * count + j
                a0.addProduct(k.load8(0), q); a1.addProduct(k.load8(8), q)
                a2.addProduct(k.load8(16), q); a3.addProduct(k.load8(24), q)
            }
            scores.store8(a0 * scale, j); scores.store8(a1 * scale, j + 8)
            scores.store8(a2 * scale, j + 16); scores.store8(a3 * scale, j + 24)
            j += 32
        }
        while j + 8 <= count {
            var a = Float8()
            for d in 0..<headDim { a.addProduct((keys + d * count + j).load8(0), Float8(repeating: query[d])) }
            scores.store8(a * scale, j)
            j += 8
        }
        while j < count {
            var s: Float = 0
            for d in 0..<headDim { s = s.addingProduct(keys[d * count + j], query[d]) }
            scores[j] = s * scale
            j += 1
        }
    }
    softmaxInPlace(scores, count: count)
    // out (d) = Σ_j p_j · V_j, 32 dimensions at a time in registers.
    var c = 0
    while c + 32 <= headDim {
        var a0 = Float8(), a1 = Float8(), a2 = Float8(), a3 = Float8()
        for j in 0..<count {
            let v = values + j * stride + c, p = Float8(repeating: scores[j])
            a0.addProduct(v.load8(0), p); a1.addProduct(v.load8(8), p)
            a2.addProduct(v.load8(16), p); a3.addProduct(v.load8(24), p)
        }
        out.store8(a0, c); out.store8(a1, c + 8); out.store8(a2, c + 16); out.store8(a3, c + 24)
        c += 32
    }
    while c + 8 <= headDim {
        var a = Float8()
        for j in 0..<count { a.addProduct((values + j * stride + c).load8(0), Float8(repeating: scores[j])) }
        out.store8(a, c)
        c += 8
    }
    while c < headDim {
        var a: Float = 0
        for j in 0..<count { a = a.addingProduct(values[j * stride + c], scores[j]) }
        out[c] = a
        c += 1
    }
}
