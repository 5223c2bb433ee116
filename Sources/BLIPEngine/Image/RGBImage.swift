/// An 8-bit RGB image: `height` rows of `width` pixels, each pixel three bytes R, G, B.
///
/// This is the decoded image as Pillow would hold it after transformers' `convert_to_rgb`
/// (mode "RGB"), and the input to ``BicubicResize`` and ``ImageNormalizer``.
public struct RGBImage: Sendable, Equatable {
    public var width: Int
    public var height: Int
    /// `height * width * 3` bytes, row-major, interleaved RGB.
    public var pixels: [UInt8]

    /// Creates an image from interleaved RGB bytes.
    /// - Precondition: `pixels.count == width * height * 3`.
    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width >= 0 && height >= 0 && pixels.count == width * height * 3,
                     "RGBImage needs width*height*3 bytes")
        self.width = width
        self.height = height
        self.pixels = pixels
    }
}
