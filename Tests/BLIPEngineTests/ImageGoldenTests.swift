import Foundation
import Testing
@testable import BLIPEngine

/// The shared fixture images against `golden/images/<name>.safetensors` (Pillow 13 +
/// transformers): `decoded` is `exif_transpose` then `convert_to_rgb`, `decoded_noexif` skips the
/// transpose, `resized_384` is `Image.resize((384, 384), BICUBIC)` of `decoded`.
@Suite struct ImageGoldenTests {
    static let names: [String] = ImageFixtures.files(in: ImageFixtures.golden, extensions: ["safetensors"])
        .map { $0.deletingPathExtension().lastPathComponent }
        .filter { FileManager.default.fileExists(atPath: ImageFixtures.images.appendingPathComponent($0).path) }

    @Test(arguments: names)
    func matchesPillow(_ name: String) throws {
        let bytes = try ImageFixtures.bytes(ImageFixtures.images.appendingPathComponent(name))
        let ref = try ImageTestSafeTensors(ImageFixtures.golden.appendingPathComponent(name + ".safetensors"))

        let decoded = try ImageDecoder.decode(bytes, applyEXIFOrientation: true)
        let d = imageDifference(decoded, try #require(ref.image("decoded")))
        #expect(d == nil, "\(name) decoded: \(d ?? "")")

        if let want = ref.image("decoded_noexif") {
            let raw = try ImageDecoder.decode(bytes, applyEXIFOrientation: false)
            let d = imageDifference(raw, want)
            #expect(d == nil, "\(name) decoded_noexif: \(d ?? "")")
        }
        if let want = ref.image("resized_384") {
            let d = imageDifference(BicubicResize.resize(decoded, width: 384, height: 384), want)
            #expect(d == nil, "\(name) resized_384: \(d ?? "")")
        }
    }
}
