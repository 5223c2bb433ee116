import Foundation
import Testing
@testable import BLIPEngine

/// Issue 22's big photos: one caption of a large image file through the engine (decode, EXIF
/// orientation, resize to the model's size, then the tiny model `tiny-a`), its decode+resize time
/// and the process's peak RSS above what it held before. Skipped unless `BLIP_BIG_PHOTO` names a
/// file (never a unit test: the files are hundreds of megapixels). `BLIP_BIG_PHOTO_MAX_PIXELS` and
/// `BLIP_BIG_PHOTO_MAX_BYTES` raise the limits (default: `ImageLimits.default`, the daemon's).
/// Make the files with `scripts/reference/make_big_photos.py DIR`, then e.g.
/// `BLIP_BIG_PHOTO=DIR/48mp.jpg swift test --skip-build --scratch-path .build-photos --filter BigPhotoBenchmark`.
@Suite struct BigPhotoBenchmark {
    static let environment = ProcessInfo.processInfo.environment
    static let path = environment["BLIP_BIG_PHOTO"]

    @Test(.enabled(if: path != nil, "set BLIP_BIG_PHOTO to an image file"))
    func captionABigPhoto() throws {
        var limits = ImageLimits.default
        if let p = Self.environment["BLIP_BIG_PHOTO_MAX_PIXELS"].flatMap(Int.init) { limits.maxPixels = p }
        if let b = Self.environment["BLIP_BIG_PHOTO_MAX_BYTES"].flatMap(Int.init) { limits.maxBytes = b }
        let captioner = try Captioner(folder: Fixtures.modelFolder("tiny-a"), imageLimits: limits)
        var parameters = GenerationParameters()
        parameters.numBeams = 1
        parameters.maxNewTokens = 5
        // Warm the engine on a small image so the figures below are the big image's alone.
        _ = try captioner.caption(image: try Fixtures.imageBytes("rocket.png"), parameters: parameters)

        let bytes = try ImageFixtures.bytes(URL(fileURLWithPath: try #require(Self.path)))
        let before = Self.status("VmRSS")
        try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)  // VmHWM ← VmRSS
        let start = ContinuousClock.now
        let result = try captioner.caption(image: bytes, parameters: parameters)
        let elapsed = ContinuousClock.now - start
        let peak = Self.status("VmHWM")
        print("BIGPHOTO \(Self.path!): \(bytes.count) bytes, decode+orient+resize \(String(format: "%.2f", result.timings.decode)) s, "
              + "caption \(elapsed), RSS before \(before >> 10) MiB (file bytes included), peak +\((peak - before) >> 10) MiB, "
              + "limits \(limits.maxPixels) px / \(limits.maxBytes) B")

        // For comparison, the path before the engine oriented inside the resize: rotate the full
        // image (ImageDecoder.decode does, for the tests against Pillow), then resize.
        let size = captioner.model.preprocessor.imageSize
        let before2 = Self.status("VmRSS")
        try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
        let start2 = ContinuousClock.now
        let rotated = try ImageDecoder.decode(bytes, limits: limits)
        _ = BicubicResize.resize(rotated, width: size, height: size)
        print("BIGPHOTO rotate-first decode+resize \(ContinuousClock.now - start2), peak +\((Self.status("VmHWM") - before2) >> 10) MiB")
    }

    /// A `/proc/self/status` field in KiB (0 where /proc is missing).
    static func status(_ field: String) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") }) else { return 0 }
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
    }
}
