/// The encodings ``ImageDecoder`` accepts.
public enum ImageFormat: Sendable, Equatable {
    case jpeg
    case png
    /// Uncompressed interleaved RGB bytes; the size travels out of band.
    case rawRGB8(width: Int, height: Int)

    /// Recognises JPEG (`FF D8 FF`) and PNG (the 8-byte signature) by their magic bytes.
    /// Raw RGB has no signature and is never sniffed.
    /// - Returns: the format, or `nil` when the bytes start like neither.
    public static func sniff(_ bytes: [UInt8]) -> ImageFormat? {
        if bytes.count >= 3, bytes[0] == 0xFF, bytes[1] == 0xD8, bytes[2] == 0xFF {
            return .jpeg
        }
        let pngSignature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        if bytes.count >= 8, bytes[0..<8].elementsEqual(pngSignature) {
            return .png
        }
        return nil
    }
}
