/// A weight matrix (n, k) quantised to int8 per output row (`w ≈ scale[o] · q[o, i]`, q in ±127,
/// rounded to nearest even) for decode steps to read: a quarter of float32's bytes, widened to
/// float32 in registers. The layout is the bfloat16 one's (``PackedBFloat16Matrix``): blocks of
/// four output rows, and within a block, for each run of 8 inputs, the four rows' 8 values side by
/// side — `[⌈n/4⌉][⌈k/8⌉][4][8]`, zero-padded, so any shape packs.
struct PackedInt8Matrix: @unchecked Sendable {
    // @unchecked: points into storage owned by the WeightStore, immutable after loading.
    let values: UnsafePointer<Int8>
    let scales: UnsafePointer<Float>
    let outFeatures: Int
    let inFeatures: Int

    /// k rounded up to a multiple of 8: the length of one packed row.
    static func paddedInputs(_ k: Int) -> Int { (k + 7) / 8 * 8 }
    /// Elements the packed form of an (n, k) matrix takes.
    static func count(outFeatures n: Int, inFeatures k: Int) -> Int { (n + 3) / 4 * 4 * paddedInputs(k) }

    /// Quantises `weight` (n, k) row-major into `values` (``count(outFeatures:inFeatures:)``) and `scales` (n).
    static func pack(_ weight: UnsafePointer<Float>, outFeatures n: Int, inFeatures k: Int,
                     into values: UnsafeMutablePointer<Int8>, scales: UnsafeMutablePointer<Float>) {
        let kp = paddedInputs(k)
        values.initialize(repeating: 0, count: count(outFeatures: n, inFeatures: k))
        Parallel.forChunks(count: n, granularity: 4, minimumChunk: 64) { range in
            for o in range {
                let row = weight + o * k
                var largest: Float = 0
                for i in 0..<k { largest = max(largest, abs(row[i])) }
                let scale = largest > 0 ? largest / 127 : 1
                scales[o] = scale
                let out = values + (o / 4) * 4 * kp + (o % 4) * 8
                for i in 0..<k {
                    out[(i / 8) * 32 + i % 8] = Int8(max(-127, min(127, (row[i] / scale).rounded(.toNearestOrEven))))
                }
            }
        }
    }

    /// The element (o, i) as the kernel sees it (dequantised), for tests.
    subscript(o: Int, i: Int) -> Float {
        Float(values[(o / 4) * 4 * Self.paddedInputs(inFeatures) + (i / 8) * 32 + (o % 4) * 8 + i % 8]) * scales[o]
    }
}

extension UnsafePointer where Pointee == Int8 {
    /// Eight weights widened to float32.
    @inline(__always) func load8(_ i: Int) -> Float8 {
        floatsFromSmallIntegers(SIMD8<Int32>(truncatingIfNeeded: UnsafeRawPointer(self + i).loadUnaligned(as: SIMD8<Int8>.self)))
    }
}

/// `y (rows, n) = x (rows, k) · Wᵀ [+ bias] [+ y]` with W packed int8: each output's dot product
/// over q in float32 (the same order whatever the rows it is computed with, so a caption's logits
/// do not depend on what it is batched with), then times its row's scale.
func skinnyProduct(weight m: PackedInt8Matrix, bias: UnsafePointer<Float>?,
                   x: UnsafePointer<Float>, rows: Int, xStride: Int,
                   y: UnsafeMutablePointer<Float>, yStride: Int, accumulate: Bool) {
    let n = m.outFeatures, k = m.inFeatures, kp = PackedInt8Matrix.paddedInputs(k)
    Parallel.forChunks(count: n, granularity: 4, minimumChunk: max(4, (1 << 16) / kp)) { range in
        var o = range.lowerBound
        while o < range.upperBound {
            let block = m.values + (o / 4) * 4 * kp
            var r = 0
            while r < rows {
                let pair = r + 1 < rows
                int8Block(block, k: k, output: o, n: n, scales: m.scales, bias: bias, x: x + r * xStride, pair: pair,
                          xStride: xStride, y: y + r * yStride, yStride: yStride, accumulate: accumulate)
                r += pair ? 2 : 1
            }
            o += 4
        }
    }
}

/// Four outputs (one packed block) for one or two activation rows: up to 8 accumulators.
@inline(__always)
private func int8Block(_ block: UnsafePointer<Int8>, k: Int, output o: Int, n: Int, scales: UnsafePointer<Float>,
                       bias: UnsafePointer<Float>?, x: UnsafePointer<Float>, pair: Bool, xStride: Int,
                       y: UnsafeMutablePointer<Float>, yStride: Int, accumulate: Bool) {
    let x1 = x + (pair ? xStride : 0)
    var a0 = Float8(), a1 = Float8(), a2 = Float8(), a3 = Float8()
    var b0 = Float8(), b1 = Float8(), b2 = Float8(), b3 = Float8()
    var p = block
    var i = 0
    while i + 8 <= k {
        let w0 = p.load8(0), w1 = p.load8(8), w2 = p.load8(16), w3 = p.load8(24)
        let xv = x.load8(i)
        a0.addProduct(w0, xv); a1.addProduct(w1, xv); a2.addProduct(w2, xv); a3.addProduct(w3, xv)
        if pair {
            let xw = x1.load8(i)
            b0.addProduct(w0, xw); b1.addProduct(w1, xw); b2.addProduct(w2, xw); b3.addProduct(w3, xw)
        }
        p += 32
        i += 8
    }
    var dots = SIMD4(a0.sum(), a1.sum(), a2.sum(), a3.sum())
    var dots1 = SIMD4(b0.sum(), b1.sum(), b2.sum(), b3.sum())
    // The last partial run of inputs (k not a multiple of 8), one by one.
    for e in 0..<(k - i) {
        let xv = x[i + e], xw = x1[i + e]
        for t in 0..<4 {
            let w = Float(p[t * 8 + e])
            dots[t] += w * xv
            dots1[t] += w * xw
        }
    }
    store(dots, o, n, scales, bias, y, accumulate)
    if pair { store(dots1, o, n, scales, bias, y + yStride, accumulate) }
}

@inline(__always)
private func store(_ dots: SIMD4<Float>, _ o: Int, _ n: Int, _ scales: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                   _ y: UnsafeMutablePointer<Float>, _ accumulate: Bool) {
    for t in 0..<min(4, n - o) {
        var v = dots[t] * scales[o + t]
        if let bias { v += bias[o + t] }
        if accumulate { v += y[o + t] }
        y[o + t] = v
    }
}
