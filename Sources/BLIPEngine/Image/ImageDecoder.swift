/// Turns JPEG, PNG or raw RGB bytes into the 8-bit RGB image that Pillow's `Image.open` followed
/// by transformers' `convert_to_rgb` produces (bit for bit), optionally applying the EXIF
/// orientation as `ImageOps.exif_transpose` would.
public enum ImageDecoder {
    /// Decodes an image.
    /// - Parameters:
    ///   - bytes: the encoded image.
    ///   - format: the encoding, or `nil` to recognise JPEG/PNG by their leading bytes.
    ///   - applyEXIFOrientation: rotate/flip by the EXIF orientation tag (JPEG `APP1`, PNG `eXIf`).
    ///     transformers itself ignores it; photos from phones usually need it.
    ///   - limits: input size and pixel-count bounds, checked before pixel memory is allocated.
    /// - Throws: ``ImageError`` naming what is wrong with the input.
    public static func decode(_ bytes: [UInt8], format: ImageFormat? = nil,
                              applyEXIFOrientation: Bool = true,
                              limits: ImageLimits = .default) throws(ImageError) -> RGBImage {
        guard !bytes.isEmpty else { throw .empty }
        guard bytes.count <= limits.maxBytes else {
            throw .tooManyBytes(count: bytes.count, limit: limits.maxBytes)
        }
        guard let format = format ?? ImageFormat.sniff(bytes) else { throw .unknownFormat }

        let image: RGBImage
        let orientation: Int?
        switch format {
        case .jpeg:
            image = try JPEGDecoder.decode(bytes, limits: limits)
            orientation = applyEXIFOrientation ? EXIFOrientation.fromJPEG(bytes) : nil
        case .png:
            let (decoded, exif) = try PNGDecoder.decode(bytes, limits: limits)
            image = decoded
            orientation = exif
        case let .rawRGB8(width, height):
            image = try decodeRaw(bytes, width: width, height: height, limits: limits)
            orientation = nil
        }
        guard applyEXIFOrientation, let o = orientation else { return image }
        return EXIFOrientation.apply(o, to: image)
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
