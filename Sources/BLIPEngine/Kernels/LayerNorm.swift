/// `nn.LayerNorm` over the last dimension: (x − mean) / sqrt(var + eps) · weight + bias, with the
/// biased variance as PyTorch computes it.
struct LayerNorm: @unchecked Sendable {
    // @unchecked: points into immutable weight storage that the model keeps alive.
    let weight: UnsafePointer<Float>  // (width)
    let bias: UnsafePointer<Float>    // (width)
    let width: Int
    let eps: Float

    /// Normalises `rows` rows of `x` (row stride `width`) into `y`; `y` may equal `x`.
    func callAsFunction(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>) {
        Parallel.forChunks(count: rows, granularity: 1, minimumChunk: max(1, (1 << 15) / width)) { range in
            for r in range { normalizeRow(x + r * width, into: y + r * width) }
        }
    }

    @inline(__always)
    private func normalizeRow(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>) {
        let n = width, vectorEnd = n & ~7
        var sum8 = Float8()
        var i = 0
        while i < vectorEnd { sum8 += x.load8(i); i += 8 }
        var sum = sum8.sum()
        for j in vectorEnd..<n { sum += x[j] }
        let mean = sum / Float(n)
        var sq8 = Float8()
        i = 0
        while i < vectorEnd { let d = x.load8(i) - mean; sq8 += d * d; i += 8 }
        var sq = sq8.sum()
        for j in vectorEnd..<n { let d = x[j] - mean; sq += d * d }
        let inv = 1 / (sq / Float(n) + eps).squareRoot()
        i = 0
        while i < vectorEnd {
            y.store8((x.load8(i) - mean) * inv * weight.load8(i) + bias.load8(i), i)
            i += 8
        }
        for j in vectorEnd..<n { y[j] = (x[j] - mean) * inv * weight[j] + bias[j] }
    }
}
