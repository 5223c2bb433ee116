import Foundation
import Testing
@testable import BLIPEngine

/// Inputs that must be rejected with a specific, explanatory error.
@Suite struct ImageErrorTests {
    func pngBytes() throws -> [UInt8] {
        try ImageFixtures.bytes(ImageFixtures.unit.appendingPathComponent("png-rgb8.png"))
    }
    func jpegBytes() throws -> [UInt8] {
        try ImageFixtures.bytes(ImageFixtures.unit.appendingPathComponent("jpeg-420.jpg"))
    }

    @Test func emptyInput() {
        #expect(throws: ImageError.empty) { try ImageDecoder.decode([]) }
    }

    @Test func garbageInput() {
        #expect(throws: ImageError.unknownFormat) { try ImageDecoder.decode(Array("hello, not an image".utf8)) }
        #expect(ImageFormat.sniff([0x89, 0x50]) == nil)
    }

    @Test func garbageWithForcedFormatIsCorrupt() {
        for format in [ImageFormat.jpeg, .png] {
            #expect { try ImageDecoder.decode([1, 2, 3, 4, 5, 6, 7, 8, 9], format: format) } throws: { e in
                if case .corrupt = e as? ImageError { return true } else { return false }
            }
        }
    }

    @Test func truncatedJPEG() throws {
        let full = try jpegBytes()
        for cut in [full.count / 2, full.count - 10, 200] {
            #expect { try ImageDecoder.decode(Array(full.prefix(cut))) } throws: { e in
                if case .corrupt(format: "JPEG", _) = e as? ImageError { return true } else { return false }
            }
        }
    }

    @Test func truncatedPNG() throws {
        let full = try pngBytes()
        for cut in [full.count / 2, full.count - 30, 40] {  // inside the image data
            #expect { try ImageDecoder.decode(Array(full.prefix(cut))) } throws: { e in
                if case .corrupt(format: "PNG", _) = e as? ImageError { return true } else { return false }
            }
        }
    }

    /// A header announcing 65535×65535 must be refused from the header alone (12 GB of RGB
    /// would otherwise be allocated).
    @Test func hugePNGHeaderRejected() throws {
        var png = try pngBytes()
        // IHDR width/height live at bytes 16..<24; fix the chunk CRC so only the size is wrong.
        for i in 16..<24 { png[i] = i % 4 < 2 ? 0x00 : 0xFF }
        png.replaceSubrange(29..<33, with: crc32BigEndian(Array(png[12..<29])))
        #expect(throws: ImageError.tooManyPixels(width: 65535, height: 65535, limit: ImageLimits.default.maxPixels)) {
            try ImageDecoder.decode(png)
        }
    }

    @Test func hugeJPEGHeaderRejected() throws {
        let jpeg = try jpegBytes()
        // Patch the SOF0 frame size (FF C0, length, precision, height, width).
        let sof = try #require((0..<(jpeg.count - 1)).first { jpeg[$0] == 0xFF && jpeg[$0 + 1] == 0xC0 })
        func withSize(_ hi: UInt8, _ lo: UInt8) -> [UInt8] {
            var j = jpeg
            j[sof + 5] = hi; j[sof + 6] = lo; j[sof + 7] = hi; j[sof + 8] = lo
            return j
        }
        // 65000×65000 is a legal JPEG size: refused by our limit from the header alone.
        #expect(throws: ImageError.tooManyPixels(width: 65000, height: 65000, limit: ImageLimits.default.maxPixels)) {
            try ImageDecoder.decode(withSize(0xFD, 0xE8))
        }
        // 65535×65535 exceeds libjpeg's own 65500 maximum: the header itself is refused.
        #expect { try ImageDecoder.decode(withSize(0xFF, 0xFF)) } throws: { e in
            if case .corrupt(format: "JPEG", _) = e as? ImageError { return true } else { return false }
        }
    }

    @Test func limitsAreApplied() throws {
        let small = ImageLimits(maxBytes: 100, maxPixels: 100)
        #expect(throws: ImageError.tooManyBytes(count: try jpegBytes().count, limit: 100)) {
            try ImageDecoder.decode(try jpegBytes(), limits: small)
        }
        let pixels = ImageLimits(maxBytes: 1 << 20, maxPixels: 100)
        #expect(throws: ImageError.tooManyPixels(width: 23, height: 11, limit: 100)) {
            try ImageDecoder.decode(try pngBytes(), limits: pixels)
        }
    }

    @Test func rawRGB() throws {
        let px: [UInt8] = Array(0..<18)
        let image = try ImageDecoder.decode(px, format: .rawRGB8(width: 3, height: 2))
        #expect(image == RGBImage(width: 3, height: 2, pixels: px))
        #expect(throws: ImageError.rawSizeMismatch(width: 4, height: 2, expected: 24, actual: 18)) {
            try ImageDecoder.decode(px, format: .rawRGB8(width: 4, height: 2))
        }
        #expect(throws: ImageError.rawSizeMismatch(width: Int.max, height: 3, expected: Int.max, actual: 18)) {
            try ImageDecoder.decode(px, format: .rawRGB8(width: Int.max, height: 3))
        }
        #expect(ImageError.rawSizeMismatch(width: 4, height: 2, expected: 24, actual: 18).description.contains("24"))
    }

    /// The EXIF parser reads untrusted offsets: random and truncated TIFF blocks must never crash
    /// and may only produce 1...8 or nil.
    @Test func exifParserSurvivesMalformedInput() {
        var rng = SystemRandomNumberGenerator()
        let valid: [UInt8] = [0x4D, 0x4D, 0, 0x2A, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0]
        #expect(valid.withUnsafeBufferPointer { EXIFOrientation.fromTIFF($0) } == 6)
        for n in 0..<20 {  // the orientation entry ends at byte 20
            let r = Array(valid.prefix(n)).withUnsafeBufferPointer { EXIFOrientation.fromTIFF($0) }
            #expect(r == nil)
        }
        for _ in 0..<2000 {
            var b = valid
            for _ in 0..<3 { b[Int.random(in: 0..<b.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
            let r = b.withUnsafeBufferPointer { EXIFOrientation.fromTIFF($0) }
            #expect(r == nil || (1...8).contains(r!))
            var jpeg: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE1, 0, UInt8(2 + 6 + b.count)] + Array("Exif".utf8) + [0, 0] + b
            jpeg.append(contentsOf: [0xFF, 0xE1, 0xFF, 0xFF])  // a segment claiming to run past the end
            let j = EXIFOrientation.fromJPEG(jpeg)
            #expect(j == nil || (1...8).contains(j!))
        }
    }
}

/// CRC-32 (PNG's polynomial) as four big-endian bytes.
func crc32BigEndian(_ bytes: [UInt8]) -> [UInt8] {
    var crc: UInt32 = 0xFFFF_FFFF
    for b in bytes {
        crc ^= UInt32(b)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    crc ^= 0xFFFF_FFFF
    return [UInt8(crc >> 24), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc & 0xFF)]
}
