/// `BlipImageProcessor`'s pixel pipeline after RGB conversion: bicubic resize to `S`×`S`,
/// rescale by 1/255 and normalise per channel, producing CHW float32 `pixel_values`.
public struct ImageNormalizer: Sendable {
    public let imageSize: Int
    public let mean: [Float]
    public let std: [Float]
    public let rescaleFactor: Double
    /// `table[c * 256 + v]` is the output for byte `v` in channel `c`; each output depends only
    /// on its byte, so computing all 768 once is exact and makes the per-pixel work a lookup.
    private let table: [Float]

    /// - Parameters:
    ///   - imageSize: output side `S` (384 for BLIP-large).
    ///   - mean, std: three per-channel values (CLIP's for BLIP).
    ///   - rescaleFactor: multiplier applied to bytes (in float64, as transformers does).
    public init(imageSize: Int, mean: [Float], std: [Float], rescaleFactor: Double = 1 / 255) {
        precondition(imageSize > 0 && mean.count == 3 && std.count == 3, "need a positive size and 3 means/stds")
        self.imageSize = imageSize
        self.mean = mean
        self.std = std
        self.rescaleFactor = rescaleFactor
        var table = [Float](repeating: 0, count: 3 * 256)
        for c in 0..<3 {
            for v in 0..<256 {
                // transformers: `image.astype(float64) * scale` cast to float32, then
                // `(image - mean) / std` in float32 with mean/std cast to float32.
                let rescaled = Float(Double(v) * rescaleFactor)
                table[c * 256 + v] = (rescaled - mean[c]) / std[c]
            }
        }
        self.table = table
    }

    /// Resize + rescale + normalise into `(3, S, S)` CHW float32.
    /// - Precondition: `output.count == 3 * S * S`.
    public func pixelValues(from image: RGBImage, into output: UnsafeMutableBufferPointer<Float>) {
        normalize(BicubicResize.resize(image, width: imageSize, height: imageSize), into: output)
    }

    /// Rescale + normalise an image already resized to `S`×`S` into `(3, S, S)` CHW float32: the
    /// second half of ``pixelValues(from:into:)``, a separate piece of work for the engine loop.
    /// - Precondition: `resized` is `S`×`S` and `output.count == 3 * S * S`.
    public func normalize(_ resized: RGBImage, into output: UnsafeMutableBufferPointer<Float>) {
        let s = imageSize
        precondition(output.count == 3 * s * s, "output must hold 3*S*S floats")
        precondition(resized.width == s && resized.height == s, "normalize needs an S×S image")
        let plane = s * s
        resized.pixels.withUnsafeBufferPointer { px in
            table.withUnsafeBufferPointer { lut in
                let out = output.baseAddress!
                for i in 0..<plane {
                    out[i] = lut[Int(px[3 * i])]
                    out[plane + i] = lut[256 + Int(px[3 * i + 1])]
                    out[2 * plane + i] = lut[512 + Int(px[3 * i + 2])]
                }
            }
        }
    }
}
