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
        let n = width
        for r in 0..<rows {
            let xr = x + r * n, yr = y + r * n
            var sum: Float = 0
            for i in 0..<n { sum += xr[i] }
            let mean = sum / Float(n)
            var sq: Float = 0
            for i in 0..<n { let d = xr[i] - mean; sq += d * d }
            let inv = 1 / (sq / Float(n) + eps).squareRoot()
            for i in 0..<n { yr[i] = (xr[i] - mean) * inv * weight[i] + bias[i] }
        }
    }
}
