import Foundation
import Testing
@testable import BLIPEngine

/// The quick warm-up (`Captioner.warmUp`) and the reduced-token vision pass it is built on.
@Suite("Warm-up")
struct WarmUpTests {
    static let models = ["tiny-a", "tiny-b"]

    /// Deterministic normalised-looking pixels (3, S, S) for `config`.
    static func pixels(_ config: BlipVisionConfig) -> [Float] {
        (0..<(3 * config.imageSize * config.imageSize)).map { Float(($0 &* 7919) % 255) / 127.5 - 1 }
    }

    /// Runs `encode` with `features` pre-filled with `sentinel`.
    static func encode(_ model: BlipModel, tokens: Int?, sentinel: Float = .nan) -> [Float] {
        let vc = model.config.vision
        let pixels = Self.pixels(vc)
        var features = [Float](repeating: sentinel, count: vc.tokenCount * vc.hiddenSize)
        pixels.withUnsafeBufferPointer { p in
            features.withUnsafeMutableBufferPointer { f in
                if let tokens {
                    model.vision.encode(pixels: p.baseAddress!, into: f.baseAddress!, state: VisionState(config: vc), tokens: tokens)
                } else {
                    model.vision.encode(pixels: p.baseAddress!, into: f.baseAddress!, state: VisionState(config: vc))
                }
            }
        }
        return features
    }

    @Test(arguments: models)
    func allTokensIsTheDefaultPass(model name: String) throws {
        let model = try BlipModel(folder: Fixtures.modelFolder(name))
        let full = Self.encode(model, tokens: nil)
        let explicit = Self.encode(model, tokens: model.config.vision.tokenCount)
        #expect(full.allSatisfy { $0.isFinite })
        #expect(full.map { $0.bitPattern } == explicit.map { $0.bitPattern })
    }

    @Test(arguments: models)
    func reducedPassWritesOnlyItsRows(model name: String) throws {
        let model = try BlipModel(folder: Fixtures.modelFolder(name))
        let vc = model.config.vision
        let tokens = 5
        #expect(tokens < vc.tokenCount)
        let sentinel: Float = -12345.5
        let features = Self.encode(model, tokens: tokens, sentinel: sentinel)
        let written = features[..<(tokens * vc.hiddenSize)]
        #expect(written.allSatisfy { $0.isFinite && $0 != sentinel })
        #expect(features[(tokens * vc.hiddenSize)...].allSatisfy { $0 == sentinel })
    }

    @Test(arguments: models)
    func warmUpProducesAShortValidSequence(model name: String) throws {
        let captioner = try Captioner(folder: Fixtures.modelFolder(name))
        let candidate = try captioner.warmUp()
        let text = captioner.model.config.text
        #expect(candidate.tokenIDs.first == text.bosTokenID)
        #expect((2...4).contains(candidate.tokenIDs.count), "\(candidate.tokenIDs)")
        #expect(candidate.tokenIDs.allSatisfy { (0..<Int32(text.vocabSize)).contains($0) })
        #expect(candidate.score.isFinite)
    }

    /// The warm-up leaves nothing behind: the batcher is free and captions are what a fresh
    /// captioner gives.
    @Test func captionsAfterWarmUpAreUnchanged() throws {
        let image = try Fixtures.imageBytes("astronaut_q90_420.jpg")
        let fresh = try Captioner(folder: Fixtures.modelFolder("tiny-a")).caption(image: image)
        let warmed = try Captioner(folder: Fixtures.modelFolder("tiny-a"))
        _ = try warmed.warmUp()
        #expect(try warmed.caption(image: image).candidates == fresh.candidates)
    }

    /// A service that allows only greedy decoding still warms up (with one beam).
    @Test func warmUpRespectsTheBeamLimit() throws {
        let captioner = try Captioner(folder: Fixtures.modelFolder("tiny-a"),
                                      generationLimits: GenerationLimits(maxBeams: 1, maxReturnSequences: 1))
        #expect(try captioner.warmUp().tokenIDs.count <= 4)
    }
}
