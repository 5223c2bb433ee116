/// The encodings ``ImageDecoder`` accepts.
public enum ImageFormat: Sendable, Equatable {
    case jpeg
    case png
    /// WebP: lossy, lossless, with alpha; of an animation, the first frame.
    case webp
    /// GIF: the first frame.
    case gif
    /// Windows BMP (the variants Pillow reads).
    case bmp
    /// TIFF: the first page.
    case tiff
    /// HEIF with an HEVC image (HEIC).
    case heif
    /// AVIF (HEIF with an AV1 image).
    case avif
    /// Uncompressed interleaved RGB bytes; the size travels out of band.
    case rawRGB8(width: Int, height: Int)

    /// The encoded formats this engine reads, by name, in the order the documentation lists them:
    /// the one list the error messages, the CLI and the daemon's `Info` use.
    public static let supportedNames = ["JPEG", "PNG", "WebP", "GIF", "BMP", "TIFF", "HEIC", "AVIF"]

    /// File-name extensions (lower case, without the dot) of the formats in ``supportedNames``:
    /// what the CLI takes when it walks a directory. Decoding never looks at a name: ``sniff(_:)``
    /// reads the content.
    public static let fileExtensions: Set<String> = [
        "jpg", "jpeg", "jpe", "jfif", "png", "webp", "gif", "bmp", "dib", "tif", "tiff",
        "heic", "heif", "hif", "avif",
    ]

    /// The format's name as ``supportedNames`` spells it (`"raw RGB"` for raw pixels).
    public var name: String {
        switch self {
        case .jpeg: "JPEG"
        case .png: "PNG"
        case .webp: "WebP"
        case .gif: "GIF"
        case .bmp: "BMP"
        case .tiff: "TIFF"
        case .heif: "HEIC"
        case .avif: "AVIF"
        case .rawRGB8: "raw RGB"
        }
    }

    /// Recognises every encoded format by its leading bytes, never by a file name. Raw RGB has no
    /// signature and is never sniffed.
    /// - Returns: the format, or `nil` when the bytes start like none of them (``unsupportedName(_:)``
    ///   may still name what they are).
    public static func sniff(_ bytes: [UInt8]) -> ImageFormat? {
        func starts(_ magic: [UInt8], at offset: Int = 0) -> Bool {
            bytes.count >= offset + magic.count && bytes[offset..<(offset + magic.count)].elementsEqual(magic)
        }
        if starts([0xFF, 0xD8, 0xFF]) { return .jpeg }
        if starts([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        if starts(Array("RIFF".utf8)), starts(Array("WEBP".utf8), at: 8) { return .webp }
        if starts(Array("GIF87a".utf8)) || starts(Array("GIF89a".utf8)) { return .gif }
        // "BM" then a header size Pillow reads (12, 40, 52, 56, 64, 108, 124): two letters alone
        // would take many text files for bitmaps.
        if starts(Array("BM".utf8)), bytes.count >= 18 {
            let headerSize = Int(bytes[14]) | Int(bytes[15]) << 8 | Int(bytes[16]) << 16 | Int(bytes[17]) << 24
            if [12, 40, 52, 56, 64, 108, 124].contains(headerSize) { return .bmp }
        }
        if starts([0x49, 0x49, 0x2A, 0x00]) || starts([0x4D, 0x4D, 0x00, 0x2A]) { return .tiff }
        if let brands = isoBrands(bytes) {
            if brands.contains(where: { $0 == "avif" || $0 == "avis" }) { return .avif }
            if brands.contains(where: { heifBrands.contains($0) }) { return .heif }
        }
        return nil
    }

    /// The name of a recognised format this engine does not read (SVG, PDF, JPEG XL, …), for the
    /// error ``ImageError/unsupportedFormat(name:)``; `nil` when the bytes are not recognised at all.
    public static func unsupportedName(_ bytes: [UInt8]) -> String? {
        func starts(_ magic: [UInt8], at offset: Int = 0) -> Bool {
            bytes.count >= offset + magic.count && bytes[offset..<(offset + magic.count)].elementsEqual(magic)
        }
        func startsText(_ s: String) -> Bool { starts(Array(s.utf8)) }
        if starts([0xFF, 0x0A]) || starts([0, 0, 0, 0x0C, 0x4A, 0x58, 0x4C, 0x20, 0x0D, 0x0A, 0x87, 0x0A]) { return "JPEG XL" }
        if starts([0, 0, 0, 0x0C, 0x6A, 0x50, 0x20, 0x20, 0x0D, 0x0A, 0x87, 0x0A]) || starts([0xFF, 0x4F, 0xFF, 0x51]) { return "JPEG 2000" }
        if startsText("%PDF-") { return "PDF" }
        if startsText("%!PS") || starts([0xC5, 0xD0, 0xD3, 0xC6]) { return "PostScript" }
        if startsText("8BPS") { return "PSD" }
        if starts([0, 0, 1, 0]) { return "ICO" }
        if starts([0, 0, 2, 0]) { return "CUR" }
        if startsText("icns") { return "ICNS" }
        if startsText("qoif") { return "QOI" }
        if startsText("DDS ") { return "DDS" }
        if starts([0x76, 0x2F, 0x31, 0x01]) { return "OpenEXR" }
        if startsText("#?RADIANCE") || startsText("#?RGBE") { return "Radiance HDR" }
        if startsText("FORM"), bytes.count >= 12, starts(Array("ILBM".utf8), at: 8) { return "IFF ILBM" }
        if starts([0x49, 0x49, 0x2B, 0x00]) || starts([0x4D, 0x4D, 0x00, 0x2B]) { return "BigTIFF" }
        if bytes.count >= 3, bytes[0] == UInt8(ascii: "P"), (UInt8(ascii: "1")...UInt8(ascii: "7")).contains(bytes[1]),
           [0x0A, 0x0D, 0x20, 0x09].contains(bytes[2]) { return "PNM" }
        if starts(Array("RIFF".utf8)) { return "RIFF (not WebP)" }
        if let brands = isoBrands(bytes) {
            if brands.contains(where: { ["jxl ", "jxs "].contains($0) }) { return "JPEG XL" }
            return "ISO media (brand '\(brands[0])')"
        }
        if looksLikeSVG(bytes) { return "SVG" }
        return nil
    }

    /// HEIF brands of still images and sequences coded with HEVC, or of the general MIAF/HEIF structure.
    private static let heifBrands: Set<String> = ["heic", "heix", "heim", "heis", "hevc", "hevx", "hevm", "hevs", "mif1", "msf1"]

    /// The major and compatible brands of an ISO base media file's leading `ftyp` box.
    private static func isoBrands(_ bytes: [UInt8]) -> [String]? {
        guard bytes.count >= 16, bytes[4..<8].elementsEqual(Array("ftyp".utf8)) else { return nil }
        let size = Int(bytes[0]) << 24 | Int(bytes[1]) << 16 | Int(bytes[2]) << 8 | Int(bytes[3])
        guard size >= 16 else { return nil }
        let end = min(size, bytes.count, 4096)
        var brands = [String(decoding: bytes[8..<12], as: UTF8.self)]
        var i = 16  // after the major brand and minor version
        while i + 4 <= end {
            brands.append(String(decoding: bytes[i..<(i + 4)], as: UTF8.self))
            i += 4
        }
        return brands
    }

    /// An XML or bare document whose first kilobyte opens an `<svg` element.
    private static func looksLikeSVG(_ bytes: [UInt8]) -> Bool {
        let head = bytes.prefix(1024)
        var start = head.startIndex
        if head.starts(with: [0xEF, 0xBB, 0xBF]) { start += 3 }  // UTF-8 byte-order mark
        while start < head.endIndex, [0x20, 0x09, 0x0A, 0x0D].contains(head[start]) { start += 1 }
        guard start < head.endIndex, head[start] == UInt8(ascii: "<") else { return false }
        let text = String(decoding: head[start...], as: UTF8.self).lowercased()
        return text.contains("<svg")
    }
}
