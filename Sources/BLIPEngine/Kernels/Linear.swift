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
        if rows > 1 && rows <= Self.skinnyRows {
            // Decode steps: stream the weights once for all rows (see skinnyProduct).
            skinnyProduct(weight: weight, bias: bias, outFeatures: outFeatures, inFeatures: inFeatures,
                          x: x, rows: rows, xStride: xStride, y: y, yStride: yStride, accumulate: accumulate)
            return
        }
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
        if rows == 1 {
            // One row: OpenBLAS's AVX2 gemv streams the weights at least as fast as skinnyProduct.
            cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(outFeatures), Int32(inFeatures), 1,
                        weight, Int32(inFeatures), x, 1, beta, y, 1)
            return
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(outFeatures), Int32(inFeatures),
                    1, x, Int32(xStride), weight, Int32(inFeatures), beta, y, Int32(yStride))
    }

    /// From 2 up to this many rows (beams, concurrent samples) the weight-streaming kernel is used.
    /// Measured with blip-bench at 3 rows (beam 3): one decode step ~2× faster than sgemm, which packs
    /// the whole weight for a 3-row product. 5–8 rows stream the weights twice; still no packing.
    static let skinnyRows = 8
}

/// y[i] += x[i]
@inline(__always)
func addInPlace(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
    var i = 0
    while i + 8 <= count { y.store8(y.load8(i) + x.load8(i), i); i += 8 }
    while i < count { y[i] += x[i]; i += 1 }
}
