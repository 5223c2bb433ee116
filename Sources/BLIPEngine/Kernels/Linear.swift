import COpenBLAS

/// A fully connected layer as stored by PyTorch: `weight` (out, in) row-major, `bias` (out).
/// `y = x · weightᵀ + bias`.
struct Linear: @unchecked Sendable {
    // @unchecked: points into immutable weight storage that the model keeps alive.
    let weight: UnsafePointer<Float>  // (outFeatures, inFeatures)
    let bias: UnsafePointer<Float>?   // (outFeatures)
    let inFeatures: Int
    let outFeatures: Int

    /// x: (rows, inFeatures) with row stride `inFeatures`; y: (rows, outFeatures).
    func callAsFunction(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>) {
        apply(x, rows: rows, xStride: inFeatures, into: y, yStride: outFeatures)
    }

    /// Strided form: lets callers read from and write into column slices of wider buffers.
    func apply(_ x: UnsafePointer<Float>, rows: Int, xStride: Int,
               into y: UnsafeMutablePointer<Float>, yStride: Int, accumulate: Bool = false) {
        let beta: Float
        if accumulate {
            if let bias { for r in 0..<rows { addInPlace(y + r * yStride, bias, count: outFeatures) } }
            beta = 1
        } else if let bias {
            for r in 0..<rows { (y + r * yStride).update(from: bias, count: outFeatures) }
            beta = 1
        } else {
            beta = 0
        }
        if rows <= 2 {
            // OpenBLAS is slow on tiny-M products against (N×K)ᵀ weights; gemv streams each row once.
            for r in 0..<rows {
                cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(outFeatures), Int32(inFeatures), 1,
                            weight, Int32(inFeatures), x + r * xStride, 1, beta, y + r * yStride, 1)
            }
        } else {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(outFeatures), Int32(inFeatures),
                        1, x, Int32(xStride), weight, Int32(inFeatures), beta, y, Int32(yStride))
        }
    }
}

/// y[i] += x[i]
@inline(__always)
func addInPlace(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
    for i in 0..<count { y[i] += x[i] }
}
