import Foundation

/// Exact GELU, `x · Φ(x) = 0.5 · x · (1 + erf(x / √2))` (PyTorch's default, BLIP's `hidden_act="gelu"`),
/// in place. Vectorised (`gelu8`); large buffers are split across cores.
func gelu(_ x: UnsafeMutablePointer<Float>, count: Int) {
    Parallel.forChunks(count: count, granularity: 8, minimumChunk: 1 << 16) { range in
        geluInPlace(x + range.lowerBound, count: range.count)
    }
}

/// GELU over one contiguous run on the calling thread.
@inline(__always)
func geluInPlace(_ p: UnsafeMutablePointer<Float>, count n: Int) {
    var i = 0
    while i + 8 <= n {
        p.store8(gelu8(p.load8(i)), i)
        i += 8
    }
    if i < n {
        // Tail: pad one vector with zeros so it goes through the same arithmetic.
        var lane = Float8()
        for j in i..<n { lane[j - i] = p[j] }
        lane = gelu8(lane)
        for j in i..<n { p[j] = lane[j - i] }
    }
}

/// Softmax of one row in place, subtracting the maximum first so large scores cannot overflow.
@inline(__always)
func softmaxInPlace(_ x: UnsafeMutablePointer<Float>, count n: Int) {
    var i = 0
    var max8 = Float8(repeating: -.infinity)
    while i + 8 <= n {
        let v = x.load8(i)
        max8.replace(with: v, where: v .> max8)  // mutating form: one blend per vector
        i += 8
    }
    var maximum = max8.max()
    for j in i..<n { maximum = max(maximum, x[j]) }
    var sum8 = Float8()
    i = 0
    while i + 8 <= n {
        let e = exp8(x.load8(i) - maximum)
        x.store8(e, i)
        sum8 += e
        i += 8
    }
    var sum = sum8.sum()
    for j in i..<n {
        let e = expf(x[j] - maximum)
        x[j] = e
        sum += e
    }
    let inv = 1 / sum
    i = 0
    while i + 8 <= n {
        x.store8(x.load8(i) * inv, i)
        i += 8
    }
    for j in i..<n { x[j] *= inv }
}

/// Softmax of `rows` rows of length `count` (row stride `count`), split across cores when large.
func softmaxRows(_ x: UnsafeMutablePointer<Float>, rows: Int, count: Int) {
    Parallel.forChunks(count: rows, granularity: 1, minimumChunk: max(1, (1 << 15) / max(count, 1))) { range in
        for r in range { softmaxInPlace(x + r * count, count: count) }
    }
}
