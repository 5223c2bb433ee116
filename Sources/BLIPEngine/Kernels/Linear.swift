import COpenBLAS

/// A fully connected layer as stored by PyTorch: `weight` (out, in) row-major, `bias` (out).
/// `y = x · weightᵀ + bias`.
struct Linear: @unchecked Sendable {
    // @unchecked: points into immutable weight storage that the model keeps alive.
    let weight: UnsafePointer<Float>  // (outFeatures, inFeatures)
    let bias: UnsafePointer<Float>?   // (outFeatures)
    let inFeatures: Int
    let outFeatures: Int

    /// What to apply to the output after the product, inside the same parallel piece.
    enum Epilogue { case none, gelu }

    /// x: (rows, inFeatures) with row stride `inFeatures`; y: (rows, outFeatures).
    func callAsFunction(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>,
                        then epilogue: Epilogue = .none) {
        apply(x, rows: rows, xStride: inFeatures, into: y, yStride: outFeatures, then: epilogue)
    }

    /// Strided form: lets callers read from and write into column slices of wider buffers.
    /// `accumulate` adds the result to what `y` holds (a residual connection).
    func apply(_ x: UnsafePointer<Float>, rows: Int, xStride: Int,
               into y: UnsafeMutablePointer<Float>, yStride: Int, accumulate: Bool = false,
               then epilogue: Epilogue = .none) {
        if rows == 1 {
            // One row: OpenBLAS's AVX2 gemv streams the weights faster than skinnyProduct's one-row
            // loop; each core runs it on its slice of the output features.
            Parallel.forChunks(count: outFeatures, granularity: 16, minimumChunk: max(16, (1 << 14) / max(inFeatures, 1))) { columns in
                let n = columns.count, c0 = columns.lowerBound
                let beta: Float
                if let bias {
                    if accumulate { addInPlace(y + c0, bias + c0, count: n) } else { (y + c0).update(from: bias + c0, count: n) }
                    beta = 1
                } else {
                    beta = accumulate ? 1 : 0
                }
                cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(n), Int32(inFeatures), 1,
                            weight + c0 * inFeatures, Int32(inFeatures), x, 1, beta, y + c0, 1)
                if case .gelu = epilogue { geluInPlace(y + c0, count: n) }
            }
            return
        }
        if rows <= Self.skinnyRows {
            // Decode steps: stream the weights once for all rows (see skinnyProduct).
            skinnyProduct(weight: weight, bias: bias, outFeatures: outFeatures, inFeatures: inFeatures,
                          x: x, rows: rows, xStride: xStride, y: y, yStride: yStride, accumulate: accumulate)
            if case .gelu = epilogue { for r in 0..<rows { gelu(y + r * yStride, count: outFeatures) } }
            return
        }
        // Many rows (image tokens): the output features are split across the cores, each piece one
        // single-threaded sgemm on its slice of the weights, so each weight is packed once.
        let k = inFeatures
        Parallel.forChunks(count: outFeatures, granularity: 64, minimumChunk: 64) { columns in
            let n = columns.count, c0 = columns.lowerBound
            let beta: Float
            if let bias {
                for r in 0..<rows {
                    let yr = y + r * yStride + c0
                    if accumulate { addInPlace(yr, bias + c0, count: n) } else { yr.update(from: bias + c0, count: n) }
                }
                beta = 1
            } else {
                beta = accumulate ? 1 : 0
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(n), Int32(k),
                        1, x, Int32(xStride), weight + c0 * k, Int32(k), beta, y + c0, Int32(yStride))
            if case .gelu = epilogue {
                for r in 0..<rows { geluInPlace(y + r * yStride + c0, count: n) }
            }
        }
    }

    /// From 2 up to this many rows (one image's beams) the weight-streaming kernel is used: at 3 rows (beam 3) a decode step is ~2× faster than sgemm,
    /// which packs the whole weight for a 3-row product; 5–8 rows stream the weights twice.
    static let skinnyRows = 8
}

/// y[i] += x[i]
@inline(__always)
func addInPlace(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
    var i = 0
    while i + 8 <= count { y.store8(y.load8(i) + x.load8(i), i); i += 8 }
    while i < count { y[i] += x[i]; i += 1 }
}
