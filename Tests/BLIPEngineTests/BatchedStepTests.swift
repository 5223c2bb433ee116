import Foundation
import Testing
@testable import BLIPEngine

/// Sessions decoded together (BatchedStep, as the engine loop runs them) must give exactly what
/// each gives alone.
@Suite("Decode steps of concurrent captions batched")
struct BatchedStepTests {
    static let images = ["chelsea_q95_444.jpg", "rocket.png", "astronaut_q90_420.jpg", "exif_orientation6.jpg"]

    /// Sessions stepped together get bit-identical logits to the same sessions stepped alone, with
    /// different row counts (greedy, beam 3), images and positions in one step.
    @Test(arguments: ["tiny-a", "tiny-b", "tiny-d"])
    func batchedStepsMatchSteppingAlone(_ model: String) throws {
        let captioner = try Captioner(folder: Fixtures.modelFolder(model))
        let m = captioner.model, vc = m.config.vision, p = m.preprocessor
        let normalizer = ImageNormalizer(imageSize: p.imageSize, mean: p.imageMean, std: p.imageStd, rescaleFactor: p.rescaleFactor)
        let state = VisionState(config: vc)
        var features: [FloatBuffer] = []
        for name in Self.images.prefix(3) {
            let rgb = try ImageDecoder.decode(try Fixtures.imageBytes(name))
            let pixels = FloatBuffer(count: 3 * p.imageSize * p.imageSize)
            normalizer.pixelValues(from: rgb, into: UnsafeMutableBufferPointer(start: pixels.pointer, count: pixels.count))
            let f = FloatBuffer(count: vc.tokenCount * vc.hiddenSize)
            m.encodeImage(pixels: pixels.pointer, into: f.pointer, state: state)
            features.append(f)
        }
        let rows = [1, 3, 2]
        func sessions() -> [DecoderSession] {
            zip(features, rows).map { m.makeSession(features: $0.0.pointer, maxRows: $0.1, maxLength: 12) }
        }
        let alone = sessions(), together = sessions()
        let step = BatchedStep(decoder: m.text)
        let bos = m.config.text.bosTokenID
        // Session 0 gets two extra prefix steps first, so the batched step mixes positions.
        for s in [alone[0], together[0]] { _ = try s.step([bos]); _ = try s.step([1037]) }
        for (i, s) in alone.enumerated() {
            _ = try s.step([bos])
            s.reorder(Array(repeating: 0, count: rows[i]))
        }
        try step.step(together, tokens: together.map { _ in [bos] })
        for (i, s) in together.enumerated() { s.reorder(Array(repeating: 0, count: rows[i])) }
        let vocab = m.config.text.vocabSize
        for position in 0..<5 {
            let tokens = rows.enumerated().map { i, n in (0..<n).map { Int32(1000 + 13 * i + 5 * $0 + position) } }
            var expected: [[Float]] = []
            for (s, t) in zip(alone, tokens) { expected.append(Array(try s.step(t))) }
            try step.step(together, tokens: tokens)
            for (i, s) in together.enumerated() {
                let got = Array(s.logits)
                #expect(got.count == rows[i] * vocab)
                // A Bool, not the arrays: on failure Swift Testing would diff thousands of floats.
                let differing = zip(got, expected[i]).filter { $0 != $1 }.count
                #expect(got.count == expected[i].count && differing == 0,
                        "session \(i) at step \(position): \(differing) batched logits differ from stepping alone")
                #expect(s.length == alone[i].length)
            }
        }
    }

    /// More rows than one chunk can hold (the weight-streaming kernel's limit) are stepped in turns,
    /// so each session still gets exactly what it gets alone.
    @Test func sessionsBeyondTheRowLimitStillMatchSteppingAlone() throws {
        let captioner = try Captioner(folder: Fixtures.modelFolder("tiny-a"))
        let m = captioner.model, vc = m.config.vision
        let features = FloatBuffer(count: vc.tokenCount * vc.hiddenSize)
        for i in 0..<features.count { features.pointer[i] = sin(Float(i) * 0.01) }
        let rows = 12  // 3 sessions × 12 rows = 36 > Linear.skinnyRows
        try #require(3 * rows > Linear.skinnyRows)
        func sessions() throws -> [DecoderSession] {
            try (0..<3).map { _ in
                let s = m.makeSession(features: features.pointer, maxRows: rows, maxLength: 4)
                _ = try s.step([m.config.text.bosTokenID])
                s.reorder(Array(repeating: 0, count: rows))
                return s
            }
        }
        let alone = try sessions(), together = try sessions()
        let tokens = (0..<3).map { c in (0..<rows).map { Int32(1000 + 17 * c + $0) } }
        let expected = try zip(alone, tokens).map { Array(try $0.step($1)) }
        let chunks = try BatchedStep(decoder: m.text).step(together, tokens: tokens)
        #expect(chunks == 1, "24 rows in one chunk, the last 12 alone")
        for i in 0..<3 {
            // A count, not the arrays: on failure Swift Testing would diff thousands of floats.
            let differing = zip(Array(together[i].logits), expected[i]).filter { $0 != $1 }.count
            #expect(together[i].logits.count == expected[i].count && differing == 0, "session \(i): \(differing) logits differ")
        }
    }
}
