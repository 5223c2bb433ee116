/// Bounds checked before any pixel memory is allocated, so a hostile header cannot make the
/// decoder allocate gigabytes, and a hostile file cannot buy unbounded decoding time.
///
/// What one decode holds at most (docs/protocol.md "What an image costs"): the decoded RGB8 image
/// (3 bytes per pixel, ≤ 537 MB at the default `maxPixels`; a CMYK JPEG's is 4, converted in
/// place), for a progressive or multi-scan JPEG libjpeg's coefficient buffer (2 bytes per
/// sample: 3 bytes per pixel at 4:2:0, 6 at 4:4:4), the library's own planes for WebP, HEIC and
/// AVIF, and the resize's working set (one output-sized intermediate of a few MiB and ≤ 1 MiB of
/// weights). The EXIF orientation is applied inside the resize (``BicubicResize``), so no
/// full-size rotated copy is made.
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

    /// 32 MiB of encoded input and 178,956,970 pixels: Pillow's own refusal threshold
    /// (`Image.MAX_IMAGE_PIXELS` × 2, above which `Image.open` raises `DecompressionBombError`),
    /// so every image the reference opens is accepted; about 537 MB of decoded RGB.
    public static let `default` = ImageLimits(maxBytes: 32 << 20, maxPixels: 178_956_970)

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
