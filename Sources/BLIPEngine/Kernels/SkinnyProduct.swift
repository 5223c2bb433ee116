/// `y (rows, n) = x (rows, k) · W (n, k)ᵀ [+ bias] [+ y]` for the few rows of a decode step, reading
/// each weight row once for up to four activation rows.
///
/// A decode step is bound by reading the weights (~490 MB per step for BLIP-large's decoder).
/// OpenBLAS's sgemm is slow on tiny-M products against PyTorch's (out, in) layout, and one sgemv per
/// row reads the weights once per row; this kernel streams W once for every group of four rows and
/// splits the output features across the cores.
func skinnyProduct(weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, outFeatures n: Int, inFeatures k: Int,
                   x: UnsafePointer<Float>, rows: Int, xStride: Int,
                   y: UnsafeMutablePointer<Float>, yStride: Int, accumulate: Bool) {
    // About 64 KB of weights per chunk at least, so the fork/join cost stays small.
    Parallel.forChunks(count: n, granularity: 4, minimumChunk: max(4, (1 << 14) / k)) { range in
        var r = 0
        while r < rows {
            let group = min(4, rows - r)
            let xg = x + r * xStride, yg = y + r * yStride
            if group == 1 {
                oneRow(weight: weight, bias: bias, k: k, outputs: range, x: xg, y: yg, accumulate: accumulate)
            } else if group == 2 {
                upToFourRows(weight: weight, bias: bias, k: k, outputs: range, x: xg, rows: 2, xStride: xStride,
                             y: yg, yStride: yStride, accumulate: accumulate)
            } else if group == 3 {
                upToFourRows(weight: weight, bias: bias, k: k, outputs: range, x: xg, rows: 3, xStride: xStride,
                             y: yg, yStride: yStride, accumulate: accumulate)
            } else {
                upToFourRows(weight: weight, bias: bias, k: k, outputs: range, x: xg, rows: 4, xStride: xStride,
                             y: yg, yStride: yStride, accumulate: accumulate)
            }
            r += group
        }
    }
}

/// One activation row: four output features at a time, so four independent accumulators hide the
/// add latency and the x vector is loaded once per four weight rows.
@inline(__always)
private func oneRow(weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, k: Int, outputs: Range<Int>,
                    x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, accumulate: Bool) {
    let vectorEnd = k & ~7
    var o = outputs.lowerBound
    while o + 4 <= outputs.upperBound {
        let w0 = weight + o * k, w1 = w0 + k, w2 = w1 + k, w3 = w2 + k
        var a0 = Float8(), a1 = Float8(), a2 = Float8(), a3 = Float8()
        var i = 0
        while i < vectorEnd {
            let xv = x.load8(i)
            a0 += w0.load8(i) * xv
            a1 += w1.load8(i) * xv
            a2 += w2.load8(i) * xv
            a3 += w3.load8(i) * xv
            i += 8
        }
        var s = SIMD4<Float>(a0.sum(), a1.sum(), a2.sum(), a3.sum())
        for j in vectorEnd..<k { s += SIMD4(w0[j], w1[j], w2[j], w3[j]) * x[j] }
        for t in 0..<4 { y[o + t] = finish(s[t], o + t, bias, y, accumulate) }
        o += 4
    }
    while o < outputs.upperBound {
        let w = weight + o * k
        var a = Float8()
        var i = 0
        while i < vectorEnd { a += w.load8(i) * x.load8(i); i += 8 }
        var s = a.sum()
        for j in vectorEnd..<k { s += w[j] * x[j] }
        y[o] = finish(s, o, bias, y, accumulate)
        o += 1
    }
}

/// Two to four activation rows: one weight row at a time, one accumulator per activation row.
/// Called with a literal `rows`, so after inlining the unused accumulators' branches fold away.
@inline(__always)
private func upToFourRows(weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, k: Int, outputs: Range<Int>,
                          x: UnsafePointer<Float>, rows: Int, xStride: Int,
                          y: UnsafeMutablePointer<Float>, yStride: Int, accumulate: Bool) {
    let vectorEnd = k & ~7
    let x0 = x, x1 = x + min(1, rows - 1) * xStride, x2 = x + min(2, rows - 1) * xStride, x3 = x + min(3, rows - 1) * xStride
    for o in outputs {
        let w = weight + o * k
        var a0 = Float8(), a1 = Float8(), a2 = Float8(), a3 = Float8()
        var i = 0
        while i < vectorEnd {
            let wv = w.load8(i)
            a0 += wv * x0.load8(i)
            a1 += wv * x1.load8(i)
            if rows > 2 { a2 += wv * x2.load8(i) }
            if rows > 3 { a3 += wv * x3.load8(i) }
            i += 8
        }
        var s = SIMD4<Float>(a0.sum(), a1.sum(), a2.sum(), a3.sum())
        for j in vectorEnd..<k { s += SIMD4(x0[j], x1[j], x2[j], x3[j]) * w[j] }
        for r in 0..<rows {
            let yr = y + r * yStride
            yr[o] = finish(s[r], o, bias, yr, accumulate)
        }
    }
}

@inline(__always)
private func finish(_ dot: Float, _ o: Int, _ bias: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>,
                    _ accumulate: Bool) -> Float {
    var v = dot
    if let bias { v += bias[o] }
    if accumulate { v += y[o] }
    return v
}
