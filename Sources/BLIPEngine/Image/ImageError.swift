/// Why an image could not be decoded. Each message names the problem and what to do about it.
public enum ImageError: Error, Sendable, CustomStringConvertible, Equatable {
    /// No bytes at all.
    case empty
    /// The bytes start like none of the formats in ``ImageFormat/supportedNames`` nor any other
    /// format ``ImageFormat/unsupportedName(_:)`` knows, and no format was given.
    case unknownFormat
    /// The bytes are a recognised format this engine does not read (`name`: "SVG", "PDF", …).
    case unsupportedFormat(name: String)
    /// The encoded input is larger than ``ImageLimits/maxBytes``.
    case tooManyBytes(count: Int, limit: Int)
    /// The header announces more pixels than ``ImageLimits/maxPixels``.
    case tooManyPixels(width: Int, height: Int, limit: Int)
    /// The JPEG or PNG library rejected the data (truncated, damaged, not really that format).
    case corrupt(format: String, detail: String)
    /// A valid file using a feature this decoder does not handle.
    case unsupported(format: String, detail: String)
    /// Raw RGB input whose length is not `width * height * 3`.
    case rawSizeMismatch(width: Int, height: Int, expected: Int, actual: Int)
    /// A progressive JPEG with more scans than ``ImageLimits/maxScans`` (each scan is another pass
    /// over every block of the image).
    case tooManyScans(count: Int, limit: Int)
    /// The call's deadline passed while the image was being decoded or resized.
    case deadlineExceeded
    /// The call was cancelled while the image was being decoded or resized (``ImageStopCheck``).
    case cancelled

    public var description: String {
        switch self {
        case .empty:
            return "image is empty: send the bytes of an image file (\(Self.readableFormats))"
        case .unknownFormat:
            return "image format not recognised (unknown leading bytes); this daemon reads \(Self.readableFormats): convert it to one of them, or send raw RGB with its width and height"
        case let .unsupportedFormat(name):
            return "image is \(name); this daemon reads \(Self.readableFormats)"
        case let .tooManyBytes(count, limit):
            return "image is \(count) bytes, more than the limit of \(limit): re-encode or downscale it"
        case let .tooManyPixels(width, height, limit):
            return "image is \(width)x\(height) pixels, more than the limit of \(limit): downscale it before sending"
        case let .corrupt(format, detail):
            return "\(format) data is damaged or truncated (\(detail)): check that the whole file was sent"
        case let .unsupported(format, detail):
            return "\(format) feature not supported (\(detail)): convert the image to 8-bit RGB JPEG or PNG"
        case let .rawSizeMismatch(width, height, expected, actual):
            return "raw RGB image of \(width)x\(height) needs \(expected) bytes (width*height*3) but got \(actual): check the width, height and pixel layout"
        case let .tooManyScans(count, limit):
            return "progressive JPEG has \(count) scans, more than the limit of \(limit): re-encode it (baseline, or a standard progressive script of about 10 scans)"
        case .deadlineExceeded:
            return "the deadline passed while the image was being decoded: allow more time or send a smaller image"
        case .cancelled:
            return "the caption was cancelled while its image was being decoded"
        }
    }

    /// "JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC, AVIF".
    private static var readableFormats: String { ImageFormat.supportedNames.joined(separator: ", ") }
}
