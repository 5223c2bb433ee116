/// `y (rows, n) = x (rows, k) · W (n, k)ᵀ [+ bias] [+ y]` for the few rows of a decode step, reading
/// each weight row from memory once for all rows.
///
/// A decode step is bound by reading the weights (~490 MB per step for BLIP-large's decoder).
/// OpenBLAS's sgemm is slow on tiny-M products against PyTorch's (out, in) layout, and one sgemv per
/// row reads the weights once per row; this kernel streams W once for all rows (four at a time from
/// L1) and splits the output features across the cores.
///
/// Products accumulate with fused multiply-adds (as PyTorch's kernels do), 8 lanes per output, then
/// a horizontal sum: each output's arithmetic is the same whichever rows it is computed with, so a
/// caption decoded alone or in a batch with others gets bit-identical logits.
func skinnyProduct(weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, outFeatures n: Int, inFeatures k: Int,
                   x: UnsafePointer<Float>, rows: Int, xStride: Int,
                   y: UnsafeMutablePointer<Float>, yStride: Int, accumulate: Bool) {
    // About 64 KB of weights per chunk at least, so the fork/join cost stays small.
    Parallel.forChunks(count: n, granularity: 4, minimumChunk: max(4, (1 << 14) / k)) { range in
        if rows == 1 {
            oneRow(weight: weight, bias: bias, k: k, outputs: range, x: x, y: y, accumulate: accumulate)
            return
        }
        // Weight rows outer, two at a time: they come from memory once and every group of up to
        // four activation rows (the beams of one or several captions) reuses them from L1; each
        // activation vector loaded serves both weight rows.
        var o = range.lowerBound
        while o < range.upperBound {
            let pair = o + 1 < range.upperBound
            var r = 0
            while r < rows {
                let group = min(4, rows - r)
                let xg = x + r * xStride, yg = y + r * yStride
                switch (group, pair) {
                case (1, true): dots(weight: weight, bias: bias, k: k, output: o, outputs: 2, x: xg, rows: 1, xStride: xStride, y: yg, yStride: yStride, accumulate: accumulate)
                case (2, true): dots(weight: weight, bias: bias, k: k, output: o, outputs: 2, x: xg, rows: 2, xStride: xStride, y: yg, yStride: yStride, accumulate: accumulate)
                case (3, true): dots(weight: weight, bias: bias, k: k, output: o, outputs: 2, x: xg, rows: 3, xStride: xStride, y: yg, yStride: yStride, accumulate: accumulate)
                case (_, true): dots(weight: weight, bias: bias, k: k, output: o, outputs: 2, x: xg, rows: 4, xStride: xStride, y: yg, yStride: yStride, accumulate: accumulate)
                case (1, false): dots(weight: weight, bias: bias, k: k, output: o, outputs: 1, x: xg, rows: 1, xStride: xStride, y: yg, yStride: yStride, accumulate: accumulate)
                case (2, false): dots(weight: weight, bias: bias, k: k, output: o, outputs: 1, x: xg, rows: 2, xStride: xStride, y: yg, yStride: yStride, accumulate: accumulate)
                case (3, false): dots(weight: weight, bias: bias, k: k, output: o, outputs: 1, x: xg, rows: 3, xStride: xStride, y: yg, yStride: yStride, accumulate: accumulate)
                default: dots(weight: weight, bias: bias, k: k, output: o, outputs: 1, x: xg, rows: 4, xStride: xStride, y: yg, yStride: yStride, accumulate: accumulate)
                }
                r += group
            }
            o += pair ? 2 : 1
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
            a0.addProduct(w0.load8(i), xv)
            a1.addProduct(w1.load8(i), xv)
            a2.addProduct(w2.load8(i), xv)
            a3.addProduct(w3.load8(i), xv)
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
        while i < vectorEnd { a.addProduct(w.load8(i), x.load8(i)); i += 8 }
        var s = a.sum()
        for j in vectorEnd..<k { s += w[j] * x[j] }
        y[o] = finish(s, o, bias, y, accumulate)
        o += 1
    }
}

/// Output features `output ..< output + outputs` (one or two) for one to four activation rows:
/// one accumulator per (output, row). Called with literal `outputs` and `rows`, so after inlining
/// the unused accumulators' branches fold away.
@inline(__always)
private func dots(weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, k: Int, output o: Int, outputs: Int,
                  x: UnsafePointer<Float>, rows: Int, xStride: Int,
                  y: UnsafeMutablePointer<Float>, yStride: Int, accumulate: Bool) {
    let vectorEnd = k & ~7
    let x0 = x, x1 = x + min(1, rows - 1) * xStride, x2 = x + min(2, rows - 1) * xStride, x3 = x + min(3, rows - 1) * xStride
    let w = weight + o * k, v = w + min(1, outputs - 1) * k
    var a0 = Float8(), a1 = Float8(), a2 = Float8(), a3 = Float8()
    var b0 = Float8(), b1 = Float8(), b2 = Float8(), b3 = Float8()
    var i = 0
    while i < vectorEnd {
        let wv = w.load8(i), vv = v.load8(i)
        let xv0 = x0.load8(i)
        a0.addProduct(wv, xv0)
        if outputs > 1 { b0.addProduct(vv, xv0) }
        if rows > 1 { let xv = x1.load8(i); a1.addProduct(wv, xv); if outputs > 1 { b1.addProduct(vv, xv) } }
        if rows > 2 { let xv = x2.load8(i); a2.addProduct(wv, xv); if outputs > 1 { b2.addProduct(vv, xv) } }
        if rows > 3 { let xv = x3.load8(i); a3.addProduct(wv, xv); if outputs > 1 { b3.addProduct(vv, xv) } }
        i += 8
    }
    var s = SIMD4<Float>(a0.sum(), a1.sum(), a2.sum(), a3.sum())
    var t = SIMD4<Float>(b0.sum(), b1.sum(), b2.sum(), b3.sum())
    for j in vectorEnd..<k {
        let xj = SIMD4(x0[j], x1[j], x2[j], x3[j])
        s += xj * w[j]
        t += xj * v[j]
    }
    for r in 0..<rows {
        let yr = y + r * yStride
        yr[o] = finish(s[r], o, bias, yr, accumulate)
        if outputs > 1 { yr[o + 1] = finish(t[r], o + 1, bias, yr, accumulate) }
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
