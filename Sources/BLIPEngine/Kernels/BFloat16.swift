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

extension UnsafePointer where Pointee == BFloat16 {
    /// Eight weights widened to float32.
    @inline(__always) func load8(_ i: Int) -> Float8 {
        let raw = UnsafeRawPointer(self + i).loadUnaligned(as: SIMD8<UInt16>.self)
        return unsafeBitCast(SIMD8<UInt32>(truncatingIfNeeded: raw) &<< 16, to: Float8.self)
    }
}
