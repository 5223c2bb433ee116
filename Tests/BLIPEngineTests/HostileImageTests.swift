import BLIPTestSupport
import Foundation
import Testing
@testable import BLIPEngine

/// Issue 13 at the decoder: hostile images cost bounded time and memory; the generators make
/// valid files (only the limits stop them).
@Suite struct HostileImageTests {
    @Test func theScanBombGeneratorMakesValidProgressiveJPEGs() throws {
        let bomb = HostileImages.progressiveScanBomb(width: 40, height: 24, scans: 100)
        #expect(JPEGScanCounter.scans(in: bomb) == 100)
        let image = try ImageDecoder.decode(bomb)
        #expect(image.width == 40 && image.height == 24)
        #expect(image.pixels.allSatisfy { $0 == 128 }, "a flat mid-gray image")
        #expect(JPEGScanCounter.scans(in: try Fixtures.imageBytes("coffee_progressive.jpg")) == 10)
        #expect(JPEGScanCounter.scans(in: try Fixtures.imageBytes("chelsea_q95_444.jpg")) == 1)
    }

    /// The attack: a 6000×6000 progressive JPEG of 883 near-empty scans (~100 KiB) held a
    /// worker for seconds; it is refused before decoding.
    @Test func theScanBombIsRefusedBeforeDecoding() throws {
        let bomb = HostileImages.progressiveScanBomb(width: 6000, height: 6000, scans: 883)
        let start = ContinuousClock.now
        #expect(throws: ImageError.tooManyScans(count: 883, limit: 100)) { try ImageDecoder.decode(bomb) }
        #expect(ContinuousClock.now - start < .milliseconds(500))
        let atLimit = HostileImages.progressiveScanBomb(width: 64, height: 64, scans: 100)
        #expect(throws: ImageError.tooManyScans(count: 100, limit: 99)) {
            try ImageDecoder.decode(atLimit, limits: ImageLimits(maxBytes: 1 << 20, maxPixels: 1 << 20, maxScans: 99))
        }
    }

    @Test func theZeroPNGGeneratorMakesValidPNGs() throws {
        let png = HostileImages.zeroPNG(width: 3, height: 700)
        let image = try ImageDecoder.decode(png)
        #expect(image.width == 3 && image.height == 700 && image.pixels.allSatisfy { $0 == 0 })
    }

    /// PNG rows are decoded with the deadline checked between them: a passed deadline stops a
    /// 1 × 40,000,000 PNG within one slice of rows.
    @Test func aPNGDecodeStopsAtItsDeadline() throws {
        let png = HostileImages.zeroPNG(width: 1, height: 40_000_000)
        let start = ContinuousClock.now
        #expect(throws: ImageError.deadlineExceeded) {
            try ImageDecoder.decode(png, stopCheck: ImageStopCheck(deadline: .now + .milliseconds(200)))
        }
        #expect(ContinuousClock.now - start < .milliseconds(1200))
    }

    /// A raised cancellation stops a PNG decode within one slice of rows, and wins over a passed
    /// deadline (the caller asked for it); a resize stops on it too.
    @Test func aPNGDecodeAndAResizeStopOnACancellation() throws {
        let png = HostileImages.zeroPNG(width: 1, height: 40_000_000)
        let cancelled = CancellationFlag()
        cancelled.raise()
        let start = ContinuousClock.now
        #expect(throws: ImageError.cancelled) { try ImageDecoder.decode(png, stopCheck: ImageStopCheck(cancellation: cancelled)) }
        #expect(throws: ImageError.cancelled) {
            try ImageDecoder.decode(png, stopCheck: ImageStopCheck(deadline: .now - .seconds(1), cancellation: cancelled))
        }
        #expect(ContinuousClock.now - start < .milliseconds(1000))
        let image = RGBImage(width: 64, height: 64, pixels: [UInt8](repeating: 7, count: 64 * 64 * 3))
        #expect(throws: ImageError.cancelled) {
            try BicubicResize.resize(image, width: 16, height: 16, stopCheck: ImageStopCheck(cancellation: cancelled))
        }
        #expect(try BicubicResize.resize(image, width: 16, height: 16, stopCheck: ImageStopCheck(cancellation: CancellationFlag()))
            == BicubicResize.resize(image, width: 16, height: 16), "an unraised flag changes nothing")
    }

    /// Weights computed in blocks of outputs give the same image as all at once, in both passes and
    /// both orders (the golden tests hold the single-block result to Pillow's).
    @Test func resizeWeightsInBlocksChangeNothing() throws {
        var generator = SystemRandomNumberGenerator()
        for (w, h, ow, oh) in [(7, 2000, 5, 9), (1500, 3, 11, 4), (300, 200, 13, 17), (40, 30, 80, 70)] {
            let image = RGBImage(width: w, height: h, pixels: (0..<(w * h * 3)).map { _ in UInt8.random(in: 0...255, using: &generator) })
            let whole = try BicubicResize.resize(image, width: ow, height: oh, stopCheck: .none, blockBytes: 1 << 30)
            for blockBytes in [1, 64, 4096] {
                let blocks = try BicubicResize.resize(image, width: ow, height: oh, stopCheck: .none, blockBytes: blockBytes)
                #expect(blocks == whole, "\(w)x\(h) -> \(ow)x\(oh) in blocks of \(blockBytes) bytes")
            }
        }
    }

    /// Interlaced PNGs come row by row as seven Adam7 passes: the same pixels as non-interlaced.
    @Test(arguments: ["rgb8", "rgba16", "gray2-trns"])
    func interlacedPNGsDecodeLikeTheirNonInterlacedTwin(_ name: String) throws {
        let plain = try ImageDecoder.decode(try Fixtures.imageBytes("../image-interlaced/interlace-\(name).png"))
        let interlaced = try ImageDecoder.decode(try Fixtures.imageBytes("../image-interlaced/interlace-\(name)-adam7.png"))
        #expect(plain.width == 13 && plain.height == 11)
        #expect(interlaced == plain)
    }
}
