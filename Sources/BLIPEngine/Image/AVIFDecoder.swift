import CAVIF

/// Decodes the primary image of an AVIF file (of a sequence, the first frame) with libavif, as
/// Pillow 13's AvifImagePlugin does: 8-bit RGB, or RGBA when the image has an alpha plane (then
/// composited over white as transformers does). Pillow does not apply the container's rotation and
/// mirror (`irot`, `imir`) itself: it reports them as the EXIF orientation, which `exif_transpose`
/// applies; so they come back here as an orientation for the caller's EXIF choice.
///
/// Within a couple of levels of Pillow's pixels, not identical: Pillow bundles libavif 1.x, whose
/// YCbCr → RGB conversion (and grey 4:0:0 handling) differs from Debian's 0.11 in rounding.
/// Hostile input: `avifDecoderParse` reads the size before any pixel memory, checked against the
/// limits (and libavif's own `imageSizeLimit`); the decode itself is one uninterruptible call.
/// Memory: libavif's YCbCr planes (1.5–3 bytes a pixel, more at 10/12 bits), an RGBA buffer (4) and
/// the result (3).
enum AVIFDecoder {
    static func decode(_ bytes: [UInt8], limits: ImageLimits,
                       stopCheck: ImageStopCheck = .none) throws(ImageError) -> (RGBImage, orientation: Int?) {
        guard let decoder = avifDecoderCreate() else { throw .unsupported(format: "AVIF", detail: "avifDecoderCreate failed") }
        defer { avifDecoderDestroy(decoder) }
        decoder.pointee.maxThreads = 1
        // libavif's own size limit stays at its default (16384 × 16384): over it the parse fails
        // before the size is known; under it the size is checked against `limits` below.
        decoder.pointee.imageCountLimit = 1 << 16
        // As Pillow: accept a clean aperture libavif would call invalid and a missing `pixi`.
        decoder.pointee.strictFlags &= ~UInt32(AVIF_STRICT_CLAP_VALID.rawValue)
        decoder.pointee.strictFlags &= ~UInt32(AVIF_STRICT_PIXI_REQUIRED.rawValue)

        return try bytes.withUnsafeBufferPointer { (buf) throws(ImageError) in
            try check(avifDecoderSetIOMemory(decoder, buf.baseAddress, buf.count))
            try check(avifDecoderParse(decoder))
            guard let image = decoder.pointee.image else { throw .corrupt(format: "AVIF", detail: "no image") }
            let (w, h) = (Int(image.pointee.width), Int(image.pointee.height))
            try limits.check(width: w, height: h)
            try stopCheck.check()
            try check(avifDecoderNextImage(decoder))
            try stopCheck.check()
            guard let frame = decoder.pointee.image, Int(frame.pointee.width) == w, Int(frame.pointee.height) == h else {
                throw .corrupt(format: "AVIF", detail: "the decoded image's size differs from the header's")
            }
            let alpha = frame.pointee.alphaPlane != nil

            var rgbImage = avifRGBImage()
            avifRGBImageSetDefaults(&rgbImage, frame)
            rgbImage.depth = 8
            rgbImage.format = alpha ? AVIF_RGB_FORMAT_RGBA : AVIF_RGB_FORMAT_RGB
            let channels = alpha ? 4 : 3
            var pixels = [UInt8](repeating: 0, count: w * h * channels)
            try pixels.withUnsafeMutableBufferPointer { (p) throws(ImageError) in
                rgbImage.pixels = p.baseAddress
                rgbImage.rowBytes = UInt32(w * channels)
                try check(avifImageYUVToRGB(frame, &rgbImage))
            }
            let orientation = exifOrientation(frame.pointee)
            guard alpha else { return (RGBImage(width: w, height: h, pixels: pixels), orientation) }
            // RGBA → RGB over white in place (pixel i's RGB lands at 3i, before its RGBA at 4i, which
            // is read first): no second full-size copy.
            pixels.withUnsafeMutableBufferPointer { buf in
                let p = buf.baseAddress!
                for i in 0..<(w * h) {
                    let (r, g, b, a) = (p[4 * i], p[4 * i + 1], p[4 * i + 2], p[4 * i + 3])
                    p[3 * i] = PillowPixelMath.overWhite(r, alpha: a)
                    p[3 * i + 1] = PillowPixelMath.overWhite(g, alpha: a)
                    p[3 * i + 2] = PillowPixelMath.overWhite(b, alpha: a)
                }
            }
            pixels.removeLast(w * h)  // keeps the capacity: no reallocation, no copy
            return (RGBImage(width: w, height: h, pixels: pixels), orientation)
        }
    }

    /// Whether this libavif was built with an AV1 decoder (Debian's: dav1d and libaom).
    static var canDecode: Bool { avifCodecName(AVIF_CODEC_CHOICE_AUTO, avifCodecFlags(AVIF_CODEC_FLAG_CAN_DECODE.rawValue)) != nil }

    /// Pillow's `irot_imir_to_exif_orientation` (`_avif.c`): the EXIF orientation that undoes the
    /// container's rotation (`irot`, anticlockwise quarter turns) and mirror (`imir`, axis 0 top-bottom).
    static func exifOrientation(_ image: avifImage) -> Int? {
        let imir = image.transformFlags & UInt32(AVIF_TRANSFORM_IMIR.rawValue) != 0
        let irot = image.transformFlags & UInt32(AVIF_TRANSFORM_IROT.rawValue) != 0
        let axis = image.imir.mode  // libavif 0.11 names `axis` `mode`
        let o: Int
        switch (irot ? Int(image.irot.angle) : 0, imir) {
        case (1, true): o = axis != 0 ? 7 : 5
        case (1, false): o = 8
        case (2, true): o = axis != 0 ? 4 : 2
        case (2, false): o = 3
        case (3, true): o = axis != 0 ? 5 : 7
        case (3, false): o = 6
        case (_, true): o = axis != 0 ? 2 : 4
        default: o = 1
        }
        return o == 1 ? nil : o
    }

    private static func check(_ r: avifResult) throws(ImageError) {
        guard r != AVIF_RESULT_OK else { return }
        let message = String(cString: avifResultToString(r))
        switch r {
        case AVIF_RESULT_NOT_IMPLEMENTED, AVIF_RESULT_NO_CODEC_AVAILABLE:
            throw .unsupported(format: "AVIF", detail: message)
        default:
            throw .corrupt(format: "AVIF", detail: message)
        }
    }
}
