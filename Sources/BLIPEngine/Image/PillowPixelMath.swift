/// Pillow's integer pixel arithmetic, reproduced bit for bit so decoded images equal what
/// `Image.open(...)` followed by transformers' `convert_to_rgb` gives.
enum PillowPixelMath {
    /// Pillow's `SHIFTFORDIV255`: a fast `x / 255` that is exact for the ranges used here.
    @inline(__always)
    static func shiftForDiv255(_ x: UInt32) -> UInt32 { ((x >> 8) &+ x) >> 8 }

    /// Pillow's `MULDIV255(a, b)`: `a * b / 255` rounded.
    @inline(__always)
    static func mulDiv255(_ a: Int32, _ b: Int32) -> Int32 {
        let t = a &* b &+ 128
        return ((t >> 8) &+ t) >> 8
    }

    /// One channel of `Image.alpha_composite(white, src)` (AlphaComposite.c) with an opaque white
    /// destination, which transformers uses to flatten transparency. Pillow keeps 7 extra bits
    /// of precision; with `dst = (255, 255, 255, 255)` its `coef1` simplifies to `alpha * 128`
    /// exactly, because `outa255 = 255 * 255`.
    @inline(__always)
    static func overWhite(_ value: UInt8, alpha: UInt8) -> UInt8 {
        if alpha == 0 { return 255 }
        let precisionBits: UInt32 = 7
        let coef1 = UInt32(alpha) << precisionBits
        let coef2 = (255 << precisionBits) - coef1
        let blended = UInt32(value) * coef1 + 255 * coef2
        return UInt8(truncatingIfNeeded: shiftForDiv255(blended + (0x80 << precisionBits)) >> precisionBits)
    }

    /// Pillow's `cmyk2rgb` (Convert.c) applied to the inverted ("CMYK;I") samples Pillow stores
    /// for every 4-component JPEG. `c, m, y, k` are the samples libjpeg outputs (not inverted).
    @inline(__always)
    static func rgbFromJPEGCMYK(_ c: UInt8, _ m: UInt8, _ y: UInt8, _ k: UInt8,
                                into out: UnsafeMutablePointer<UInt8>) {
        // Pillow inverts every sample on load, so its `255 - K` is libjpeg's raw K.
        let nk = Int32(k)
        @inline(__always) func channel(_ v: UInt8) -> UInt8 {
            let r = nk - mulDiv255(255 - Int32(v), nk)
            return UInt8(clamping: r)
        }
        out[0] = channel(c)
        out[1] = channel(m)
        out[2] = channel(y)
    }
}
