import COpenBLAS

/// A fully connected layer as stored by PyTorch: `weight` (out, in) row-major, `bias` (out).
/// `y = x · weightᵀ + bias`.
struct Linear: @unchecked Sendable {
    // @unchecked: points into immutable weight storage that the model keeps alive.
    let weight: UnsafePointer<Float>  // (outFeatures, inFeatures)
    let bias: UnsafePointer<Float>?   // (outFeatures)
    let inFeatures: Int
    let outFeatures: Int
    /// A bfloat16 copy of `weight` (`--precision bf16`), read instead of it by every product.
    var reducedWeight: PackedBFloat16Matrix? = nil
    /// An int8 copy of `weight` (`--precision int8`), read instead of it by every product.
    var int8Weight: PackedInt8Matrix? = nil
    /// `weight` converted for oneDNN (`--precision bf16|int8`): products given a ``MatmulScratch``
    /// (the vision encoder's, the cross-attention keys' and values') run through it, for any rows.
    var dense: DenseMatmul? = nil

    /// What to apply to the output after the product, inside the same parallel piece.
    enum Epilogue { case none, gelu }

    /// x: (rows, inFeatures) with row stride `inFeatures`; y: (rows, outFeatures).
    func callAsFunction(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>,
                        then epilogue: Epilogue = .none, scratch: MatmulScratch? = nil) {
        apply(x, rows: rows, xStride: inFeatures, into: y, yStride: outFeatures, then: epilogue, scratch: scratch)
    }

    /// Strided form: lets callers read from and write into column slices of wider buffers.
    /// `accumulate` adds the result to what `y` holds (a residual connection).
    func apply(_ x: UnsafePointer<Float>, rows: Int, xStride: Int,
               into y: UnsafeMutablePointer<Float>, yStride: Int, accumulate: Bool = false,
               then epilogue: Epilogue = .none, scratch: MatmulScratch? = nil) {
        if let dense {
            // The float32 weight's pages are given back once the oneDNN copy exists: every product
            // of this layer goes through oneDNN, with its caller's buffers.
            guard let scratch else { preconditionFailure("a oneDNN product needs its MatmulScratch") }
            precondition(xStride == inFeatures && yStride == outFeatures, "oneDNN products take dense rows")
            dense.apply(x, rows: rows, into: y, bias: bias, accumulate: accumulate, then: epilogue, scratch: scratch)
            return
        }
        if int8Weight != nil || reducedWeight != nil {
            // A reduced copy answers every product of this layer, `skinnyRows` rows at a time (each
            // row computed as alone), so the float32 weight is never read and its pages are given
            // back (`WeightStore.stepCopy`).
            var first = 0
            while first < rows {
                let count = min(Self.skinnyRows, rows - first)
                let xs = x + first * xStride, ys = y + first * yStride
                if let int8Weight {
                    skinnyProduct(weight: int8Weight, bias: bias, x: xs, rows: count, xStride: xStride,
                                  y: ys, yStride: yStride, accumulate: accumulate)
                } else if let reducedWeight {
                    skinnyProduct(weight: reducedWeight, bias: bias, x: xs, rows: count, xStride: xStride,
                                  y: ys, yStride: yStride, accumulate: accumulate)
                }
                first += count
            }
            if case .gelu = epilogue { for r in 0..<rows { gelu(y + r * yStride, count: outFeatures) } }
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

    /// Up to this many rows (the beams of one caption, or of several captions decoded together) the
    /// weight-streaming kernel is used. At 1 row it streams as fast as OpenBLAS's gemv and keeps a
    /// caption's logits independent of what it is batched with; at 3 rows (beam 3) it is ~2× faster than sgemm,
    /// which packs the whole weight for a tiny-M product; each weight row is read from memory once
    /// for all rows, so up to a few dozen rows a step stays bound by the weight read.
    static let skinnyRows = 32
}

/// y[i] += x[i]
@inline(__always)
func addInPlace(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
    var i = 0
    while i + 8 <= count { y.store8(y.load8(i) + x.load8(i), i); i += 8 }
    while i < count { y[i] += x[i]; i += 1 }
}
