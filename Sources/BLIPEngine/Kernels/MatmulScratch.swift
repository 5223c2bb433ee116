/// The buffers oneDNN's products (``DenseMatmul``) need during one forward pass: the input rows
/// quantised (u8) or rounded (bf16), the int32 accumulators and the rows' scales. Owned by the
/// caller of the pass (a `VisionState`, an `ImageMemory`), sized once for its largest product.
final class MatmulScratch: @unchecked Sendable {
    // @unchecked: used by one forward pass at a time, like the state that owns it.
    let rows: Int
    let maxInputs: Int
    let maxOutputs: Int
    /// (rows, maxInputs) elements of 2 bytes at most: u8 (int8) or bf16 inputs.
    let inputs: UnsafeMutableRawPointer
    /// (rows, maxOutputs): the int32 products of the int8 mode.
    let accumulators: UnsafeMutablePointer<Int32>
    /// (rows): each input row's quantisation scale and zero point.
    let rowScales: UnsafeMutablePointer<Float>
    let rowZeroPoints: UnsafeMutablePointer<Int32>

    init(rows: Int, maxInputs: Int, maxOutputs: Int) {
        self.rows = rows
        self.maxInputs = maxInputs
        self.maxOutputs = maxOutputs
        inputs = UnsafeMutableRawPointer.allocate(byteCount: max(1, rows * maxInputs * 2), alignment: 64)
        accumulators = UnsafeMutablePointer<Int32>.allocate(capacity: max(1, rows * maxOutputs))
        rowScales = UnsafeMutablePointer<Float>.allocate(capacity: max(1, rows))
        rowZeroPoints = UnsafeMutablePointer<Int32>.allocate(capacity: max(1, rows))
    }

    deinit {
        inputs.deallocate()
        accumulators.deallocate()
        rowScales.deallocate()
        rowZeroPoints.deallocate()
    }

    /// Whether a product of `rows` rows, `k` inputs and `n` outputs fits.
    func fits(rows r: Int, inputs k: Int, outputs n: Int) -> Bool { r <= rows && k <= maxInputs && n <= maxOutputs }
}
