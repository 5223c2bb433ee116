/// Vectorised float math for the non-GEMM kernels: 8 lanes at a time, no libm calls.
///
/// Accuracy is what the reference comparisons need (relative error ~1e-7, far inside the tests'
/// 1e-4): `exp` is Cephes' expf (range reduction by ln 2 in two parts, degree-6 polynomial) and
/// `erfc` is the Chebyshev fit of Numerical Recipes' `erfcc`, whose *relative* error stays below
/// 1.2e-7 for every argument, so GELU keeps its accuracy deep into the negative tail.
typealias Float8 = SIMD8<Float>

extension UnsafePointer where Pointee == Float {
    @inline(__always) func load8(_ i: Int) -> Float8 {
        UnsafeRawPointer(self + i).loadUnaligned(as: Float8.self)
    }
}

extension UnsafeMutablePointer where Pointee == Float {
    @inline(__always) func load8(_ i: Int) -> Float8 {
        UnsafeRawPointer(self + i).loadUnaligned(as: Float8.self)
    }

    @inline(__always) func store8(_ v: Float8, _ i: Int) {
        UnsafeMutableRawPointer(self + i).storeBytes(of: v, as: Float8.self)
    }
}

/// eˣ per lane; inputs below −87.3 give ~1e-38 instead of 0 (harmless where it is used: softmax
/// after max subtraction, GELU's tail).
@inline(__always)
func exp8(_ x: Float8) -> Float8 {
    // The mutating `replace(with:where:)` compiles to one blend; `replacing` can be scalarised.
    var x = x
    x.replace(with: 88.3762626647949, where: x .> 88.3762626647949)
    x.replace(with: -87.3365478515625, where: x .< -87.3365478515625)
    // n = round(x · log2 e) with the 1.5·2²³ trick: after the add, the low mantissa bits hold n.
    let magic: Float8 = Float8(repeating: 12582912)
    let shifted = x * 1.44269504088896341 + magic
    let n = shifted - magic
    let r = x - n * 0.693359375 + n * 2.12194440e-4
    var p: Float8 = Float8(repeating: 1.9875691500e-4)
    p = p * r + 1.3981999507e-3
    p = p * r + 8.3334519073e-3
    p = p * r + 4.1665795894e-2
    p = p * r + 1.6666665459e-1
    p = p * r + 5.0000001201e-1
    let y = p * (r * r) + r + 1
    // 2ⁿ: the rounded value's bits are 0x4B400000 + n; move n + 127 into the exponent field.
    let bits = unsafeBitCast(shifted, to: SIMD8<UInt32>.self)
    let scale = (bits &- 0x4B40_0000 &+ 127) &<< 23
    return y * unsafeBitCast(scale, to: Float8.self)
}

/// erfc(z) for z ≥ 0 (Numerical Recipes `erfcc`, relative error < 1.2e-7).
@inline(__always)
func erfcNonNegative8(_ z: Float8) -> Float8 {
    let t = 1 / (1 + 0.5 * z)
    var p: Float8 = Float8(repeating: 0.17087277)
    p = p * t - 0.82215223
    p = p * t + 1.48851587
    p = p * t - 1.13520398
    p = p * t + 0.27886807
    p = p * t - 0.18628806
    p = p * t + 0.09678418
    p = p * t + 0.37409196
    p = p * t + 1.00002368
    p = p * t - 1.26551223
    return t * exp8(p - z * z)
}

/// Exact GELU per lane: 0.5·x·(1 + erf(x/√2)) = 0.5·x·erfc(−x/√2).
@inline(__always)
func gelu8(_ x: Float8) -> Float8 {
    let z = x * 0.70710678118654752440
    var magnitude = z
    magnitude.replace(with: -z, where: z .< 0)
    magnitude.replace(with: 10, where: magnitude .> 10)
    let e = erfcNonNegative8(magnitude)
    // 1 + erf(z) = 2 − erfc(z) for z ≥ 0, erfc(−z) for z < 0.
    var onePlusErf = e
    onePlusErf.replace(with: 2 - e, where: z .>= 0)
    return 0.5 * x * onePlusErf
}
