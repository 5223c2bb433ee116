import COpenBLAS

/// Single-query attention for one head: `out = softmax(scale · K q) · V` over `keys` cached rows.
/// K and V are row-major with row stride `stride` (the full hidden width), starting at this head's slice.
@inline(__always)
func attendOneQuery(query: UnsafePointer<Float>, keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
                    count: Int, headDim: Int, stride: Int, scale: Float,
                    scores: UnsafeMutablePointer<Float>, into out: UnsafeMutablePointer<Float>) {
    // scores (count) = scale · K (count, d) · q (d)
    cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(count), Int32(headDim), scale, keys, Int32(stride),
                query, 1, 0, scores, 1)
    softmaxInPlace(scores, count: count)
    // out (d) = Vᵀ (d, count) · scores (count)
    cblas_sgemv(CblasRowMajor, CblasTrans, Int32(count), Int32(headDim), 1, values, Int32(stride),
                scores, 1, 0, out, 1)
}
