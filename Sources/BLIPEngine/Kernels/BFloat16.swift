/// A bfloat16 number: the high 16 bits of a float32 (8-bit exponent, 7-bit mantissa). The reduced-
/// precision weight mode stores the decoder's matrices this way: half the bytes a decode step must
/// read, widened back to float32 in registers (a shift), products and sums in float32.
struct BFloat16: Sendable, Equatable {
    var bits: UInt16

    /// Rounds to the nearest bfloat16, ties to even, as PyTorch's `tensor.to(torch.bfloat16)`;
    /// NaN stays NaN.
    init(_ value: Float) {
        let raw = value.bitPattern
        if value.isNaN {
            bits = UInt16(truncatingIfNeeded: raw >> 16) | 0x40
        } else {
            let roundingBias = 0x7FFF + ((raw >> 16) & 1)
            bits = UInt16(truncatingIfNeeded: (raw &+ roundingBias) >> 16)
        }
    }

    var float: Float { Float(bitPattern: UInt32(bits) << 16) }
}
