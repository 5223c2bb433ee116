/// Bounds checked before any pixel memory is allocated, so a hostile header cannot make the
/// decoder allocate gigabytes.
public struct ImageLimits: Sendable {
    /// Largest encoded input accepted, in bytes.
    public var maxBytes: Int
    /// Largest `width * height` accepted (checked on the header, before decoding).
    public var maxPixels: Int

    public init(maxBytes: Int, maxPixels: Int) {
        self.maxBytes = maxBytes
        self.maxPixels = maxPixels
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
