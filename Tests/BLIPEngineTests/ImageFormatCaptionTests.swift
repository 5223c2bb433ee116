import Foundation
import Testing
@testable import BLIPEngine

/// Issue 22: captions of the new formats token-identical to transformers on the tiny fixtures.
/// `Fixtures/image-formats/captions-tiny-a.json` (scripts/reference/make_image_format_captions.py):
/// transformers' greedy captions (make_fixtures.py's `greedy_default` and `greedy_prompt`) of
/// `BlipProcessor(exif_transpose(Image.open(f)))` on tiny-a, HEIC through pillow-heif and AVIF
/// through Pillow 13. The engine must give the same tokens from the file bytes. No near-tie
/// allowance: a HEIC or AVIF whose ±2 pixel differences change a token fails here, and the one
/// that does on Debian 12 is listed in ``knownDivergences`` as a known issue (still checked: if it
/// stops diverging, the test says so).
@Suite struct ImageFormatCaptionTests {
    /// Cases whose tokens differ because the decoder's pixels do (not the engine): checked under
    /// `withKnownIssue`, which fails when the issue does not occur.
    static let knownDivergences: [String: String] = [
        "heic_rgb.heic/greedy_default": "Debian 12's libheif 1.15 + libde265 decodes heic_rgb.heic within ±2 of "
            + "pillow-heif's bundled libheif; at generated token 10, where transformers' top-2 margin is 0.0028, "
            + "that picks 14776 instead of 12421. transformers given the pixels this decoder produces generates "
            + "exactly the engine's tokens (checked with scripts/reference/make_image_format_captions.py's recipe).",
    ]

    static let model = "tiny-a"
    static let cases: [CaptionReferenceTests.Case] = {
        let url = ImageFormatTests.directory.appendingPathComponent("captions-\(model).json")
        guard let data = try? Data(contentsOf: url),
              let cases = try? JSONDecoder().decode([CaptionReferenceTests.Case].self, from: data) else { return [] }
        return cases.map { var c = $0; c.model = model; return c }
    }()
    static let captioner = try? Captioner(folder: Fixtures.modelFolder(model))

    @Test func everyFormatHasCases() {
        let images = Set(Self.cases.map(\.image))
        for prefix in ["webp_", "gif_", "bmp_", "tiff_", "heic_", "avif_"] {
            #expect(images.contains { $0.hasPrefix(prefix) }, "no caption case for \(prefix)*; run scripts/reference/make_image_format_captions.py")
        }
    }

    @Test(arguments: cases.filter { c in
        (!c.image.hasPrefix("heic_") || HEIFDecoder.canDecodeHEVC) && (!c.image.hasPrefix("avif_") || AVIFDecoder.canDecode)
    })
    func captionTokensMatchTransformers(_ c: CaptionReferenceTests.Case) throws {
        let captioner = try #require(Self.captioner)
        let bytes = try ImageFixtures.bytes(ImageFormatTests.directory.appendingPathComponent(c.image))
        let result = try captioner.caption(image: bytes, parameters: c.parameters)
        func check() {
            #expect(result.candidates.map(\.tokenIDs) == c.sequences, "\(c.image) \(c.name)")
            #expect(result.candidates.map(\.text) == c.texts, "\(c.image) \(c.name)")
        }
        if let why = Self.knownDivergences["\(c.image)/\(c.name)"] {
            withKnownIssue(Comment(rawValue: why)) { check() }
        } else {
            check()
        }
    }
}
