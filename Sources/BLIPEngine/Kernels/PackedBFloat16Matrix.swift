/// A weight matrix (n, k) as bfloat16 in the layout the decode-step kernel streams fastest: blocks of
/// four output rows, and within a block, for each run of 8 inputs, the four rows' 8 values side by
/// side — `[n/4][k/8][4][8]`, one 64-byte cache line per step of the inner loop. Row-major bfloat16
/// reads four 1.5 KB streams at once and reaches only ~70% of the bandwidth this layout does.
/// Within a run the 8 values are stored as the pairs (0, 4), (1, 5), (2, 6), (3, 7): read as four
/// 32-bit lanes, a shift gives inputs 0–3 and a mask inputs 4–7 as float32 (``widenedRun``), which
/// the standard library's UInt16 → UInt32 lane conversion does one lane at a time.
///
/// Used only when n is a multiple of 4 and k of 8 (every BLIP matrix); otherwise there is no copy
/// and the float32 weight is read.
struct PackedBFloat16Matrix: @unchecked Sendable {
    // @unchecked: points into storage owned by the WeightStore, immutable after loading.
    let values: UnsafePointer<BFloat16>
    let outFeatures: Int
    let inFeatures: Int

    static func canPack(outFeatures n: Int, inFeatures k: Int) -> Bool { n % 4 == 0 && k % 8 == 0 && n > 0 && k > 0 }

    /// Rounds `weight` (n, k) row-major into `destination` (n · k elements) in the packed layout.
    static func pack(_ weight: UnsafePointer<Float>, outFeatures n: Int, inFeatures k: Int,
                     into destination: UnsafeMutablePointer<BFloat16>) {
        Parallel.forChunks(count: n, granularity: 4, minimumChunk: 64) { range in
            for o in range {
                let block = o / 4, lane = o % 4
                let row = weight + o * k
                let out = destination + block * 4 * k + lane * 8
                for c in 0..<(k / 8) {
                    for e in 0..<8 { out[c * 32 + Self.slot(e)] = BFloat16(row[c * 8 + e]) }
                }
            }
        }
    }

    /// Where input e (0..<8) of a run is stored within it.
    @inline(__always) static func slot(_ e: Int) -> Int { e < 4 ? 2 * e : 2 * (e - 4) + 1 }

    /// The element (o, i), for tests.
    subscript(o: Int, i: Int) -> Float {
        values[(o / 4) * 4 * inFeatures + (i / 8) * 32 + (o % 4) * 8 + Self.slot(i % 8)].float
    }
}

/// The 8 weights of one run (stored in ``PackedBFloat16Matrix``'s pair order) widened to float32,
/// in input order.
@inline(__always)
private func widenedRun(_ p: UnsafePointer<BFloat16>) -> Float8 {
    let pairs = UnsafeRawPointer(p).loadUnaligned(as: SIMD4<UInt32>.self)
    return Float8(lowHalf: unsafeBitCast(pairs &<< 16, to: SIMD4<Float>.self),
                  highHalf: unsafeBitCast(pairs & 0xFFFF_0000, to: SIMD4<Float>.self))
}

/// `y (rows, n) = x (rows, k) · Wᵀ [+ bias] [+ y]` with W packed bfloat16, widened in registers:
/// the same order of fused multiply-adds per output as the float32 kernel, so a caption's logits do
/// not depend on the rows it is batched with in this mode either.
func skinnyProduct(weight m: PackedBFloat16Matrix, bias: UnsafePointer<Float>?,
                   x: UnsafePointer<Float>, rows: Int, xStride: Int,
                   y: UnsafeMutablePointer<Float>, yStride: Int, accumulate: Bool) {
    let k = m.inFeatures
    Parallel.forChunks(count: m.outFeatures, granularity: 4, minimumChunk: max(4, (1 << 14) / k)) { range in
        var o = range.lowerBound
        while o < range.upperBound {
            let block = m.values + o * k  // block o/4 starts at (o/4)·4·k = o·k
            var r = 0
            while r + 2 <= rows {
                packedBlock(block, k: k, output: o, bias: bias, x: x + r * xStride, rows: 2, xStride: xStride,
                            y: y + r * yStride, yStride: yStride, accumulate: accumulate)
                r += 2
            }
            if r < rows {
                packedBlock(block, k: k, output: o, bias: bias, x: x + r * xStride, rows: 1, xStride: xStride,
                            y: y + r * yStride, yStride: yStride, accumulate: accumulate)
            }
            o += 4
        }
    }
}

/// Four outputs (one packed block) for one or two activation rows: up to 8 accumulators.
@inline(__always)
private func packedBlock(_ block: UnsafePointer<BFloat16>, k: Int, output o: Int, bias: UnsafePointer<Float>?,
                         x: UnsafePointer<Float>, rows: Int, xStride: Int,
                         y: UnsafeMutablePointer<Float>, yStride: Int, accumulate: Bool) {
    let x1 = x + min(1, rows - 1) * xStride
    var a0 = Float8(), a1 = Float8(), a2 = Float8(), a3 = Float8()
    var b0 = Float8(), b1 = Float8(), b2 = Float8(), b3 = Float8()
    var p = block
    var i = 0
    while i < k {
        let w0 = widenedRun(p), w1 = widenedRun(p + 8), w2 = widenedRun(p + 16), w3 = widenedRun(p + 24)
        let xv = x.load8(i)
        a0.addProduct(w0, xv); a1.addProduct(w1, xv); a2.addProduct(w2, xv); a3.addProduct(w3, xv)
        if rows > 1 {
            let xw = x1.load8(i)
            b0.addProduct(w0, xw); b1.addProduct(w1, xw); b2.addProduct(w2, xw); b3.addProduct(w3, xw)
        }
        p += 32
        i += 8
    }
    store(SIMD4(a0.sum(), a1.sum(), a2.sum(), a3.sum()), o, bias, y, accumulate)
    if rows > 1 { store(SIMD4(b0.sum(), b1.sum(), b2.sum(), b3.sum()), o, bias, y + yStride, accumulate) }
}

@inline(__always)
private func store(_ dots: SIMD4<Float>, _ o: Int, _ bias: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>, _ accumulate: Bool) {
    for t in 0..<4 {
        var v = dots[t]
        if let bias { v += bias[o + t] }
        if accumulate { v += y[o + t] }
        y[o + t] = v
    }
}
