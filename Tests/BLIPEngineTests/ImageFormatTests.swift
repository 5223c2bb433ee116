import Foundation
import Testing
@testable import BLIPEngine

/// The formats of issue 22 (WebP, GIF, BMP, TIFF, HEIC, AVIF) against Pillow 13:
/// `Fixtures/image-formats/<name>.safetensors` from `scripts/reference/make_image_format_fixtures.py`
/// (`decoded` = `exif_transpose` then `convert_to_rgb`; `decoded_noexif` without the transpose).
/// Exact (max |Δ| = 0) except HEIC and AVIF (±2: other library versions than Pillow's wheels).
@Suite struct ImageFormatTests {
    static let directory = ImageFixtures.root.appendingPathComponent("image-formats")

    struct Entry: Decodable { var format: String; var tolerance: Int; var notes: String }
    static let index: [String: Entry] = {
        guard let data = try? Data(contentsOf: directory.appendingPathComponent("index.json")) else { return [:] }
        return (try? JSONDecoder().decode([String: Entry].self, from: data)) ?? [:]
    }()
    static func names(_ prefix: String) -> [String] { index.keys.filter { $0.hasPrefix(prefix) }.sorted() }

    @Test func theFixturesArePresent() {
        #expect(Self.index.count >= 40, "run scripts/reference/make_image_format_fixtures.py")
        for prefix in ["bmp_", "gif_", "webp_", "tiff_", "heic_", "avif_"] { #expect(!Self.names(prefix).isEmpty, "\(prefix)") }
    }

    @Test(arguments: names("bmp_")) func bmpMatchesPillow(_ name: String) throws { try matchesPillow(name, .bmp) }
    @Test(arguments: names("gif_")) func gifMatchesPillow(_ name: String) throws { try matchesPillow(name, .gif) }
    @Test(arguments: names("webp_")) func webpMatchesPillow(_ name: String) throws { try matchesPillow(name, .webp) }
    @Test(arguments: names("tiff_")) func tiffMatchesPillow(_ name: String) throws { try matchesPillow(name, .tiff) }
    @Test(.enabled(if: HEIFDecoder.canDecodeHEVC, "this libheif has no HEVC decoder (Debian's uses libde265)"), arguments: names("heic_"))
    func heicMatchesPillowHeif(_ name: String) throws { try matchesPillow(name, .heif) }
    @Test(.enabled(if: AVIFDecoder.canDecode, "this libavif has no AV1 decoder"), arguments: names("avif_"))
    func avifMatchesPillow(_ name: String) throws { try matchesPillow(name, .avif) }

    private func matchesPillow(_ name: String, _ format: ImageFormat) throws {
        let url = Self.directory.appendingPathComponent(name)
        let bytes = try ImageFixtures.bytes(url)
        let ref = try ImageTestSafeTensors(url.appendingPathExtension("safetensors"))
        let tolerance = try #require(Self.index[name]).tolerance
        #expect(ImageFormat.sniff(bytes) == format, "\(name) sniffed as \(String(describing: ImageFormat.sniff(bytes)))")

        let decoded = try ImageDecoder.decode(bytes, applyEXIFOrientation: true)
        let d = imageDifference(decoded, try #require(ref.image("decoded")), tolerance: tolerance)
        #expect(d == nil, "\(name) decoded: \(d ?? "")")
        if let want = ref.image("decoded_noexif") {
            let raw = try ImageDecoder.decode(bytes, applyEXIFOrientation: false)
            let d = imageDifference(raw, want, tolerance: tolerance)
            #expect(d == nil, "\(name) decoded_noexif: \(d ?? "")")
        }
    }

    // MARK: sniffing and the named-format error

    @Test func theSupportedFormatsAreListedOnce() {
        #expect(ImageFormat.supportedNames == ["JPEG", "PNG", "WebP", "GIF", "BMP", "TIFF", "HEIC", "AVIF"])
        let all: [ImageFormat] = [.jpeg, .png, .webp, .gif, .bmp, .tiff, .heif, .avif]
        #expect(all.map(\.name) == ImageFormat.supportedNames)
        for ext in ["jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff", "heic", "heif", "avif"] {
            #expect(ImageFormat.fileExtensions.contains(ext), "\(ext)")
        }
    }

    @Test func unsupportedFormatsAreNamed() throws {
        let cases: [([UInt8], String)] = [
            (Array("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"4\"/>".utf8), "SVG"),
            (Array("\u{FEFF}<?xml version=\"1.0\"?>\n<!-- x -->\n<svg>".utf8), "SVG"),
            (Array("%PDF-1.7\n".utf8), "PDF"),
            ([0xFF, 0x0A, 0xFA, 0x7F, 0x01, 0x00], "JPEG XL"),
            ([0, 0, 0, 0x0C, 0x4A, 0x58, 0x4C, 0x20, 0x0D, 0x0A, 0x87, 0x0A, 0, 0], "JPEG XL"),
            ([0, 0, 0, 0x0C, 0x6A, 0x50, 0x20, 0x20, 0x0D, 0x0A, 0x87, 0x0A], "JPEG 2000"),
            (Array("8BPS\u{0}\u{1}".utf8), "PSD"),
            ([0, 0, 1, 0, 1, 0, 16, 16], "ICO"),
            (Array("qoif\u{0}\u{0}".utf8), "QOI"),
            (Array("P6\n4 4\n255\n".utf8), "PNM"),
        ]
        for (bytes, name) in cases {
            #expect(ImageFormat.sniff(bytes) == nil)
            #expect(throws: ImageError.unsupportedFormat(name: name), "\(name)") { try ImageDecoder.decode(bytes) }
        }
        #expect(ImageError.unsupportedFormat(name: "SVG").description
            == "image is SVG; this daemon reads JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC, AVIF")
        #expect(throws: ImageError.unknownFormat) { try ImageDecoder.decode(Array("hello, not an image".utf8)) }
        #expect(ImageError.unknownFormat.description.contains("this daemon reads JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC, AVIF"))
        // Two letters are not a bitmap: "BM" needs a known info-header size after it.
        #expect(ImageFormat.sniff(Array("BMW owners' club newsletter".utf8)) == nil)
    }

    // MARK: hostile headers: refused from the header, before pixel memory

    /// A header announcing more pixels than the limit (Pillow's 178,956,970 by default) is refused,
    /// quickly, whatever the format: here BMP, GIF, WebP (lossless, lossy), TIFF, HEIC and AVIF;
    /// JPEG and PNG in ImageErrorTests (`hugeJPEGHeaderRejected`, `hugePNGHeaderRejected`).
    @Test func hugeHeadersAreRefusedBeforeDecoding() throws {
        let limit = ImageLimits.default.maxPixels
        func expectTooMany(_ bytes: [UInt8], _ w: Int, _ h: Int, _ what: String) {
            let start = ContinuousClock.now
            #expect(throws: ImageError.tooManyPixels(width: w, height: h, limit: limit), "\(what)") { try ImageDecoder.decode(bytes) }
            #expect(ContinuousClock.now - start < .milliseconds(300), "\(what)")
        }
        expectTooMany(Self.bmp(width: 100_000, height: 100_000, bits: 24, pixelBytes: 64), 100_000, 100_000, "BMP")
        expectTooMany(Self.bmp(width: 100, height: -2_000_000, bits: 8, pixelBytes: 64), 100, 2_000_000, "top-down BMP")

        var gif = try fixture("gif_palette.gif")
        gif[6] = 0xFF; gif[7] = 0xFF; gif[8] = 0xFF; gif[9] = 0xFF  // logical screen 65535 × 65535
        expectTooMany(gif, 65535, 65535, "GIF")

        // A lossless WebP's VP8L header: 14 bits of width - 1, 14 of height - 1 (16384 × 16384 at most).
        var webp = try fixture("webp_lossless.webp")
        #expect(String(decoding: webp[12..<16], as: UTF8.self) == "VP8L" && webp[20] == 0x2F)
        webp[21] = 0xFF; webp[22] = 0xFF; webp[23] = 0xFF; webp[24] |= 0x0F
        expectTooMany(webp, 16384, 16384, "WebP VP8L header")
        // A lossy WebP's VP8 key frame: start code 9D 01 2A, then 14 bits of width and of height.
        let simpleLossy = Self.names("webp_").first { (try? fixture($0))?[12..<16].elementsEqual(Array("VP8 ".utf8)) == true }
        var lossy = try fixture(try #require(simpleLossy, "a simple-format lossy WebP fixture"))
        #expect(lossy[23..<26].elementsEqual([0x9D, 0x01, 0x2A]))
        lossy[26] = 0xFF; lossy[27] = 0x3F; lossy[28] = 0xFF; lossy[29] = 0x3F
        expectTooMany(lossy, 16383, 16383, "WebP VP8 header")

        expectTooMany(Self.tiff(width: 100_000, height: 100_000), 100_000, 100_000, "TIFF")

        if HEIFDecoder.canDecodeHEVC {
            expectTooMany(try Self.patchingISPE(fixture("heic_rgb.heic"), to: (15000, 15000)), 15000, 15000, "HEIC ispe")
        }
        if AVIFDecoder.canDecode {
            expectTooMany(try Self.patchingISPE(fixture("avif_rgb.avif"), to: (15000, 15000)), 15000, 15000, "AVIF ispe")
        }
    }

    /// Damaged files are typed errors, never crashes: every fixture cut short, and its header bytes flipped.
    @Test func truncatedAndDamagedFilesAreTypedErrors() throws {
        for name in Self.index.keys.sorted() {
            let bytes = try fixture(name)
            for cut in [bytes.count / 3, bytes.count - 9] where cut > 0 {
                do { _ = try ImageDecoder.decode(Array(bytes.prefix(cut))) } catch { _ = error.description }
            }
            var flipped = bytes
            for i in stride(from: 6, to: min(flipped.count, 200), by: 7) { flipped[i] ^= 0x5A }
            do { _ = try ImageDecoder.decode(flipped) } catch { _ = error.description }
        }
        #expect(throws: ImageError.self) { try ImageDecoder.decode(Array(try fixture("bmp_rgb24.bmp").prefix(200))) }
        #expect(throws: ImageError.self) { try ImageDecoder.decode(Array(try fixture("gif_palette.gif").prefix(900))) }
        #expect(throws: ImageError.self) { try ImageDecoder.decode(Array(try fixture("tiff_rgb_lzw.tif").prefix(300))) }
    }

    /// Row loops check the deadline and the cancellation: a raised flag stops BMP and TIFF decodes.
    @Test func longDecodesStopOnCancellation() throws {
        let cancelled = CancellationFlag()
        cancelled.raise()
        let stop = ImageStopCheck(cancellation: cancelled)
        let bmp = Self.bmp(width: 2000, height: 1500, bits: 24, pixelBytes: 2000 * 3 * 1500)
        #expect(try ImageDecoder.decode(bmp).width == 2000)
        #expect(throws: ImageError.cancelled) { try ImageDecoder.decode(bmp, stopCheck: stop) }
        let tiff = Self.tiff(width: 2000, height: 1500, pixels: true)
        #expect(try ImageDecoder.decode(tiff).height == 1500)
        #expect(throws: ImageError.cancelled) { try ImageDecoder.decode(tiff, stopCheck: stop) }
        #expect(throws: ImageError.deadlineExceeded) { try ImageDecoder.decode(tiff, stopCheck: ImageStopCheck(deadline: .now - .seconds(1))) }
    }

    // MARK: helpers

    private func fixture(_ name: String) throws -> [UInt8] { try ImageFixtures.bytes(Self.directory.appendingPathComponent(name)) }

    /// A BMP with a 40-byte header (negative height: top-down) and `pixelBytes` of zeros.
    static func bmp(width: Int, height: Int, bits: Int, pixelBytes: Int) -> [UInt8] {
        var b: [UInt8] = Array("BM".utf8)
        func u32(_ v: Int) { for i in 0..<4 { b.append(UInt8((v >> (8 * i)) & 0xFF)) } }
        func u16(_ v: Int) { for i in 0..<2 { b.append(UInt8((v >> (8 * i)) & 0xFF)) } }
        let palette = bits <= 8 ? 4 << bits : 0
        u32(54 + palette + pixelBytes); u32(0); u32(54 + palette)
        u32(40); u32(width); u32(height); u16(1); u16(bits); u32(0); u32(pixelBytes); u32(2835); u32(2835); u32(0); u32(0)
        b += [UInt8](repeating: 0, count: palette + pixelBytes)
        return b
    }

    /// A little-endian grey 8-bit uncompressed TIFF, one strip; pixel data only when `pixels`.
    static func tiff(width: Int, height: Int, pixels: Bool = false) -> [UInt8] {
        var b: [UInt8] = [0x49, 0x49, 42, 0]
        func u32(_ v: Int) { for i in 0..<4 { b.append(UInt8((v >> (8 * i)) & 0xFF)) } }
        func u16(_ v: Int) { for i in 0..<2 { b.append(UInt8((v >> (8 * i)) & 0xFF)) } }
        u32(8)
        let entries: [(Int, Int, Int)] = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 1), (262, 3, 1),
                                          (273, 4, 8 + 2 + 9 * 12 + 4), (277, 3, 1), (278, 4, height),
                                          (279, 4, pixels ? width * height : 16)]
        u16(entries.count)
        for (tag, type, value) in entries {
            u16(tag); u16(type); u32(1)
            if type == 3 { u16(value); u16(0) } else { u32(value) }
        }
        u32(0)
        b += [UInt8](repeating: 77, count: pixels ? width * height : 16)
        return b
    }

    /// `bytes` with every `ispe` (image spatial extents) box set to `size`.
    static func patchingISPE(_ bytes: [UInt8], to size: (Int, Int)) throws -> [UInt8] {
        var b = bytes
        let tag = Array("ispe".utf8)
        var found = 0
        for i in 0..<(b.count - 16) where b[i..<(i + 4)].elementsEqual(tag) {
            for (o, v) in [(i + 8, size.0), (i + 12, size.1)] { for k in 0..<4 { b[o + k] = UInt8((v >> (8 * (3 - k))) & 0xFF) } }
            found += 1
        }
        try #require(found > 0)
        return b
    }
}

/// `nil` when every element is within `tolerance`, else a message naming the worst element.
func imageDifference(_ got: RGBImage, _ want: RGBImage, tolerance: Int) -> String? {
    guard tolerance > 0 else { return imageDifference(got, want) }
    guard got.width == want.width, got.height == want.height else {
        return "size \(got.width)x\(got.height), expected \(want.width)x\(want.height)"
    }
    var worst = 0, at = 0
    for i in 0..<got.pixels.count {
        let d = abs(Int(got.pixels[i]) - Int(want.pixels[i]))
        if d > worst { worst = d; at = i }
    }
    guard worst > tolerance else { return nil }
    return "max |Δ| = \(worst) > \(tolerance) at flat index \(at): got \(got.pixels[at]), expected \(want.pixels[at])"
}

/// Decode time of one large image, for the issue's per-format figures: skipped unless
/// `BLIP_IMAGE_BENCH` names a file. Peak RSS: run under `/usr/bin/time -v`, e.g.
/// `BLIP_IMAGE_BENCH=12mp.webp /usr/bin/time -v swift test --skip-build --filter ImageDecodeBenchmark`.
@Suite struct ImageDecodeBenchmark {
    static let path = ProcessInfo.processInfo.environment["BLIP_IMAGE_BENCH"]

    @Test(.enabled(if: path != nil, "set BLIP_IMAGE_BENCH to an image file"))
    func decodeTime() throws {
        let bytes = try ImageFixtures.bytes(URL(fileURLWithPath: try #require(Self.path)))
        let limits = ImageLimits(maxBytes: 1 << 27, maxPixels: 40_000_000)
        var best = Duration.seconds(1000)
        var size = (0, 0)
        for _ in 0..<3 {
            let start = ContinuousClock.now
            let image = try ImageDecoder.decode(bytes, limits: limits)
            best = min(best, ContinuousClock.now - start)
            size = (image.width, image.height)
        }
        print("BENCH \(Self.path!) \(size.0)x\(size.1) \(bytes.count) bytes: best of 3 \(best)")
    }
}
