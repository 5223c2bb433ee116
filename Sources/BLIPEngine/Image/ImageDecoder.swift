/// Turns JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC, AVIF or raw RGB bytes into the 8-bit RGB image that Pillow's `Image.open` followed
/// by transformers' `convert_to_rgb` produces (bit for bit), optionally applying the EXIF
/// orientation as `ImageOps.exif_transpose` would.
public enum ImageDecoder {
    /// Decodes an image.
    /// - Parameters:
    ///   - bytes: the encoded image.
    ///   - format: the encoding, or `nil` to recognise it by its leading bytes (``ImageFormat/sniff(_:)``).
    ///   - applyEXIFOrientation: rotate/flip by the EXIF orientation tag (JPEG `APP1`, PNG `eXIf`,
    ///     WebP `EXIF`, AVIF's `irot`/`imir` as Pillow reports them). transformers itself ignores it;
    ///     photos from phones usually need it. A TIFF's Orientation tag and HEIC's `irot`/`imir` are
    ///     applied always, as Pillow (on load) and pillow-heif (libheif) do.
    ///   - limits: input size, pixel-count and scan bounds, checked before pixel memory is allocated.
    ///   - stopCheck: the deadline and cancellation, checked while rows, strips or chunks are decoded
    ///     (PNG, GIF, BMP, TIFF, WebP) and between decoding and the EXIF rotation.
    /// - Throws: ``ImageError`` naming what is wrong with the input, or why the work stopped
    ///   (``ImageError/deadlineExceeded``, ``ImageError/cancelled``).
    public static func decode(_ bytes: [UInt8], format: ImageFormat? = nil,
                              applyEXIFOrientation: Bool = true,
                              limits: ImageLimits = .default,
                              stopCheck: ImageStopCheck = .none) throws(ImageError) -> RGBImage {
        let (image, orientation) = try decodeUnoriented(bytes, format: format, applyEXIFOrientation: applyEXIFOrientation,
                                                        limits: limits, stopCheck: stopCheck)
        guard let o = orientation else { return image }
        try stopCheck.check()
        return EXIFOrientation.apply(o, to: image)
    }

    /// The decoded image and, when `applyEXIFOrientation`, the EXIF orientation still to apply
    /// (``oriented(_:by:)``): two pieces of work, so the engine loop can check deadlines and cancels between them.
    public static func decodeUnoriented(_ bytes: [UInt8], format: ImageFormat? = nil, applyEXIFOrientation: Bool = true,
                                        limits: ImageLimits = .default,
                                        stopCheck: ImageStopCheck = .none) throws(ImageError) -> (RGBImage, orientation: Int?) {
        guard !bytes.isEmpty else { throw .empty }
        guard bytes.count <= limits.maxBytes else {
            throw .tooManyBytes(count: bytes.count, limit: limits.maxBytes)
        }
        guard let format = format ?? ImageFormat.sniff(bytes) else {
            throw ImageFormat.unsupportedName(bytes).map { .unsupportedFormat(name: $0) } ?? .unknownFormat
        }

        let image: RGBImage
        let orientation: Int?
        switch format {
        case .jpeg:
            image = try JPEGDecoder.decode(bytes, limits: limits)
            orientation = applyEXIFOrientation ? EXIFOrientation.fromJPEG(bytes) : nil
        case .png:
            let (decoded, exif) = try PNGDecoder.decode(bytes, limits: limits, stopCheck: stopCheck)
            image = decoded
            orientation = applyEXIFOrientation ? exif : nil
        case .webp:
            let (decoded, exif) = try WebPDecoder.decode(bytes, limits: limits, stopCheck: stopCheck)
            image = decoded
            orientation = applyEXIFOrientation ? exif : nil
        case .gif:
            image = try GIFDecoder.decode(bytes, limits: limits, stopCheck: stopCheck)
            orientation = nil
        case .bmp:
            image = try BMPDecoder.decode(bytes, limits: limits, stopCheck: stopCheck)
            orientation = nil
        case .tiff:
            // Pillow applies a TIFF's Orientation tag when it loads the file, whatever the caller does.
            let (decoded, tag) = try TIFFDecoder.decode(bytes, limits: limits, stopCheck: stopCheck)
            image = decoded
            orientation = tag
        case .heif:
            image = try HEIFDecoder.decode(bytes, limits: limits, stopCheck: stopCheck)
            orientation = nil
        case .avif:
            let (decoded, transform) = try AVIFDecoder.decode(bytes, limits: limits, stopCheck: stopCheck)
            image = decoded
            orientation = applyEXIFOrientation ? transform : nil
        case let .rawRGB8(width, height):
            image = try decodeRaw(bytes, width: width, height: height, limits: limits)
            orientation = nil
        }
        return (image, orientation.flatMap { (2...8).contains($0) ? $0 : nil })
    }

    /// `image` rotated/flipped by EXIF orientation `orientation` (1...8), as `exif_transpose` does.
    public static func oriented(_ image: RGBImage, by orientation: Int) -> RGBImage {
        EXIFOrientation.apply(orientation, to: image)
    }

    private static func decodeRaw(_ bytes: [UInt8], width: Int, height: Int,
                                  limits: ImageLimits) throws(ImageError) -> RGBImage {
        let (pixels, o1) = width.multipliedReportingOverflow(by: height)
        let (expected, o2) = pixels.multipliedReportingOverflow(by: 3)
        guard width > 0, height > 0, !o1, !o2, expected == bytes.count else {
            throw .rawSizeMismatch(width: width, height: height,
                                   expected: (o1 || o2) ? Int.max : expected, actual: bytes.count)
        }
        try limits.check(width: width, height: height)
        return RGBImage(width: width, height: height, pixels: bytes)
    }
}
