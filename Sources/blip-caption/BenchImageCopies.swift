import BLIPEngine

/// The images `blip-caption bench` sends: by default a distinct copy per request, so that the
/// daemon's feature cache (keyed by the SHA-256 of the image bytes) cannot answer a request from
/// an earlier one and the reported rate is the rate of whole captions.
///
/// A copy differs only in a comment the decoders skip — a JPEG COM segment right after SOI, a PNG
/// `tEXt` chunk right after IHDR — so it decodes to the same pixels and costs the daemon the same
/// work as the original. The comment holds a token chosen per run, so copies from an earlier run
/// miss the cache too.
struct BenchImageCopies {
    enum Kind: Equatable {
        /// A JPEG or PNG: each request gets its own copy.
        case distinct(format: String)
        /// `--same-image`, or an image that is neither JPEG nor PNG: the same bytes every time.
        case same(reason: String)
    }

    let original: [UInt8]
    let kind: Kind
    private let run = UInt64.random(in: .min ... .max)

    init(_ image: [UInt8], sameImage: Bool) {
        original = image
        if sameImage {
            kind = .same(reason: "--same-image")
        } else if Self.isJPEG(image) {
            kind = .distinct(format: "a JPEG comment")
        } else if Self.pngHeaderEnd(image) != nil {
            kind = .distinct(format: "a PNG tEXt chunk")
        } else {
            kind = .same(reason: "neither JPEG nor PNG, so no copy can differ from it without changing its pixels")
        }
    }

    /// The bytes of request `index` (0-based).
    func image(_ index: Int) -> [UInt8] {
        guard case .distinct = kind else { return original }
        let comment = Array("blip-caption bench \(String(run, radix: 16)) copy \(index)".utf8)
        if Self.isJPEG(original) {
            // SOI, then COM (FF FE, a 2-byte length counting itself), then the original's segments.
            let length = comment.count + 2
            return [0xFF, 0xD8, 0xFF, 0xFE, UInt8(length >> 8), UInt8(length & 0xFF)] + comment + original[2...]
        }
        guard let end = Self.pngHeaderEnd(original) else { return original }
        // tEXt: keyword, NUL, text; the CRC covers the type and the data.
        let type = Array("tEXt".utf8)
        let data = Array("Comment".utf8) + [0] + comment
        var chunk = bigEndian(UInt32(data.count)) + type + data
        chunk += bigEndian(CRC32.checksum(type + data))
        return Array(original[..<end]) + chunk + original[end...]
    }

    /// What the run sends, for the report.
    func describe(_ path: String, requests: Int) -> String {
        switch kind {
        case .distinct(let format):
            return "images: \(requests) distinct copies of \(path) (each with \(format) of its own: the same pixels, a feature-cache key of its own)"
        case .same(let reason):
            return "images: \(path), the same bytes every time (\(reason)): after the first, the daemon may answer from its feature cache"
        }
    }

    private static func isJPEG(_ b: [UInt8]) -> Bool { b.count > 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF }

    /// The offset just past the IHDR chunk of a PNG (signature, then IHDR: 4 + 4 + 13 + 4 bytes).
    private static func pngHeaderEnd(_ b: [UInt8]) -> Int? {
        let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        guard b.count > 33, b.starts(with: signature), b[8..<12].elementsEqual([0, 0, 0, 13]),
              b[12..<16].elementsEqual(Array("IHDR".utf8)) else { return nil }
        return 33
    }

    private func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }
}
