/// Conversions between integer and float32 lanes, written as bit manipulations because the
/// standard library's generic SIMD conversions run lane by lane through function calls. Each
/// relies on 1.5·2²³ (bits 0x4B40_0000), whose float32 neighbours are spaced exactly 1 apart: an
/// integer added to it lands in the low mantissa bits.

/// Integers of magnitude below 2²² to float32, exactly.
@inline(__always)
func floatsFromSmallIntegers(_ v: SIMD8<Int32>) -> Float8 {
    unsafeBitCast(v &+ 0x4B40_0000, to: Float8.self) - 12_582_912
}

/// Float32 values of magnitude below 2²² rounded to the nearest integer (ties to even).
@inline(__always)
func roundedIntegers(_ x: Float8) -> SIMD8<Int32> {
    unsafeBitCast(x + 12_582_912, to: SIMD8<Int32>.self) &- 0x4B40_0000
}

/// Any int32 to float32, correctly rounded: the high 16 bits and the low 16 bits converted exactly,
/// then one rounding in their sum.
@inline(__always)
func floats(_ v: SIMD8<Int32>) -> Float8 {
    let low = unsafeBitCast((v & 0xFFFF) | 0x4B00_0000, to: Float8.self) - 8_388_608
    return floatsFromSmallIntegers(v &>> 16) * 65_536 + low
}
