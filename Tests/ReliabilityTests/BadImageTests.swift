import BLIPProtocol
import BLIPTestSupport
import Foundation
import Testing

extension ReliabilitySuite {
    /// Hostile and unusual images (docs/protocol.md §5.1): each gets its status; the valid odd
    /// ones (CMYK, 16-bit, 1×1, a 36-megapixel zero PNG) are captioned.
    @Test func badAndOddImages() throws {
        // A frame limit above the image limit, so max_image_bytes itself can be reached.
        let h = try Harness(arguments: ["--max-frame-bytes", "\(40 << 20)"])
        do {
        let c = try h.connect()
        func run(_ name: String, _ image: CaptionRequest.Image, _ code: StatusCode, _ mention: String = "",
                 sourceLocation: SourceLocation = #_sourceLocation) throws {
            let start = Date()
            let response = try c.caption(CaptionRequest(image: image, options: .init(numBeams: 1, maxNewTokens: 3)), timeout: 60)
            h.check("\(name) [\(Int(Date().timeIntervalSince(start) * 1000)) ms]", response, code: code,
                    messageContains: mention, sourceLocation: sourceLocation)
        }
        let png = try Paths.image("rocket.png")
        try run("empty image", .init(data: []), .invalidArgument)
        try run("garbage bytes, format auto", .init(data: Array("hello, world".utf8)), .invalidArgument)
        try run("PNG bytes declared JPEG", .init(data: png, format: .jpeg), .invalidArgument, "JPEG")
        try run("JPEG bytes declared PNG", .init(data: try Paths.image("chelsea_q95_444.jpg"), format: .png), .invalidArgument, "PNG")
        try run("truncated JPEG (60%)", .init(data: try Paths.input("truncated.jpg")), .invalidArgument)
        try run("JPEG with a corrupt frame header", .init(data: try Paths.input("corrupt-header.jpg")), .invalidArgument)
        try run("truncated PNG (60%)", .init(data: try Paths.input("truncated.png")), .invalidArgument)
        try run("PNG with a bad IHDR CRC", .init(data: try Paths.input("bad-crc.png")), .invalidArgument)
        // libjpeg-turbo refuses dimensions over 65500 itself, before the pixel limit is checked.
        try run("JPEG header declaring 65535x65535", .init(data: try Paths.input("huge-header.jpg")), .invalidArgument, "65500")
        try run("JPEG header declaring 65500x65500", .init(data: try Paths.input("huge-65500.jpg")), .resourceExhausted, "65500")
        try run("PNG header declaring 65535x65535", .init(data: try Paths.input("huge-header.png")), .resourceExhausted, "65535")
        // 64 Mpx: above the 40 Mpx default of old, within Pillow's 178,956,970 now (the 65535x65535 PNG above is refused).
        try run("zip-bomb PNG 8000x8000 (62 KB file, 64 Mpx: within limits)", .init(data: try Paths.input("bomb-8000x8000.png")), .ok)
        try run("raw RGB8, width 0", .init(data: [1, 2, 3], format: .rawRGB8, width: 0, height: 1), .invalidArgument)
        try run("raw RGB8, size mismatch", .init(data: [1, 2, 3, 4], format: .rawRGB8, width: 1, height: 1), .invalidArgument)
        try run("raw RGB8, 4294967295 x 4294967295", .init(data: [1, 2, 3], format: .rawRGB8, width: .max, height: .max), .invalidArgument)
        try run("33 MiB image (> max_image_bytes)", .init(data: [UInt8](repeating: 0xFF, count: (32 << 20) + 1)), .resourceExhausted)
        // Corrupt entropy data: libjpeg-turbo decodes what it can; either outcome is acceptable, a crash is not.
        do {
            let response = try c.caption(CaptionRequest(image: .init(data: try Paths.input("corrupt-scan.jpg")), options: .init(numBeams: 1, maxNewTokens: 3)))
            h.check("JPEG with random scan data", response, code: response.statusCode)
            #expect([.ok, .invalidArgument].contains(response.statusCode))
        }
        // 64x64 PNG whose IDAT inflates to 64 MiB: the decoder must stop at the image's size.
        do {
            let rss = h.daemon.rssKiB
            let response = try c.caption(CaptionRequest(image: .init(data: try Paths.input("bomb-overlong-idat.png")), options: .init(numBeams: 1, maxNewTokens: 3)))
            h.check("zip-bomb PNG 64x64, IDAT inflating to 64 MiB", response, code: response.statusCode)
            #expect([.ok, .invalidArgument].contains(response.statusCode))
            if ProcessInfo.processInfo.environment["BLIP_SANITIZER"] == nil { #expect(h.daemon.rssKiB - rss < 16 << 10) }
        }
        // An unknown format enum value, written by hand: CaptionRequest { image { data: "x", format: 7 } }.
        do {
            let payload: [UInt8] = [0x0a, 0x05, 0x0a, 0x01, 0x78, 0x10, 0x07]
            h.check("image format 7 (unknown)", try c.call(RPCMethod.caption.rawValue, payload: payload), code: .invalidArgument)
        }
        // Valid but unusual images are captioned.
        try run("CMYK JPEG", .init(data: try Paths.image("cmyk_chelsea.jpg")), .ok)
        try run("16-bit RGB PNG", .init(data: try Paths.image("rgb16_rocket.png")), .ok)
        try run("1x1 PNG", .init(data: try Paths.image("pixel_1x1.png")), .ok)
        try run("1x1 raw RGB8", .init(data: [255, 0, 0], format: .rawRGB8, width: 1, height: 1), .ok)
        try run("50x3000 PNG", .init(data: try Paths.image("tall_50x3000.png")), .ok)
        try run("progressive JPEG", .init(data: try Paths.image("coffee_progressive.jpg")), .ok)
        try run("EXIF orientation 6 JPEG", .init(data: try Paths.image("exif_orientation6.jpg")), .ok)
        try run("zip-bomb PNG 6000x6000 zeros (35 KB, 36 Mpx: within limits)", .init(data: try Paths.input("bomb-6000x6000.png")), .ok)
        }
        // The 36-megapixel decode holds ~150 MB while it runs; it must be given back.
        h.finish("images", rssBoundKiB: 48 << 10)
    }
}
