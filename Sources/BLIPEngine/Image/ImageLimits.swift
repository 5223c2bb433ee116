/// Bounds checked before any pixel memory is allocated, so a hostile header cannot make the
/// decoder allocate gigabytes, and a hostile file cannot buy unbounded decoding time.
///
/// What one decode holds at most (docs/protocol.md "Image limits"): the decoded RGB8 image
/// (3 bytes per pixel, ≤ 120 MB at `maxPixels`), for a JPEG libjpeg's own buffers (a
/// progressive or multi-scan JPEG keeps every DCT coefficient: 2 bytes per sample, ≤ 240 MB
/// for 4:4:4 at `maxPixels`), for a CMYK JPEG a 4-byte-per-pixel copy, one EXIF-rotated copy,
/// and a few MiB of rows and resize weights: at most about 9 bytes per pixel (4:4:4 progressive
/// JPEG: 3 of RGB + 6 of coefficients), 3–7 for the other kinds, and no buffer sized by the input
/// that the output does not need.
public struct ImageLimits: Sendable {
    /// Largest encoded input accepted, in bytes.
    public var maxBytes: Int
    /// Largest `width * height` accepted (checked on the header, before decoding).
    public var maxPixels: Int

    /// Most scans a progressive JPEG may have (counted in the file before decoding; libjpeg-turbo's
    /// tools recommend 100). Encoders write about 10; each scan costs a pass over every block.
    public var maxScans: Int

    public init(maxBytes: Int, maxPixels: Int, maxScans: Int = 100) {
        self.maxBytes = maxBytes
        self.maxPixels = maxPixels
        self.maxScans = maxScans
    }

    /// 32 MiB of encoded input and 40 megapixels (about 120 MB of decoded RGB, and a little
    /// more than a 7952×5304 full-frame camera image).
    public static let `default` = ImageLimits(maxBytes: 32 << 20, maxPixels: 40_000_000)

    /// Throws when a `width`×`height` image would exceed `maxPixels` (or is empty).
    func check(width: Int, height: Int) throws(ImageError) {
        guard width > 0, height > 0 else {
            throw .corrupt(format: "image", detail: "header gives a \(width)x\(height) image")
        }
        // Compare without multiplying first: width and height come from an untrusted header.
        if width > maxPixels || height > maxPixels / width {
            throw .tooManyPixels(width: width, height: height, limit: maxPixels)
        }
    }
}
