import Foundation
import Testing
@testable import BLIPEngine

/// The vision encoder and the first decoding step against transformers' outputs for the same
/// pixel_values (golden tensors written by scripts/reference/make_fixtures.py).
@Suite("Model numerics against transformers")
struct ModelNumericsTests {
    /// (model, image) pairs that have golden tensors.
    static let cases: [(String, String)] = Fixtures.modelNames.flatMap { model in
        let dir = Fixtures.root.appendingPathComponent("golden/\(model)")
        let files = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return files.filter { $0.hasSuffix(".safetensors") }.sorted().map { (model, String($0.dropLast(".safetensors".count))) }
    }

    /// The pairs whose golden file also holds first-step logits.
    static let logitCases = cases.filter { (try? Fixtures.golden(model: $0.0, image: $0.1).entries["first_logits"]) != nil }

    /// Models are loaded once per test process.
    static let models: [String: BlipModel] = Dictionary(uniqueKeysWithValues: Fixtures.modelNames.compactMap { name in
        (try? BlipModel(folder: Fixtures.modelFolder(name))).map { (name, $0) }
    })

    // Tolerances relative to the largest magnitude of the expected tensor. fp32 with different
    // summation orders (OpenBLAS vs MKL-DNN) differs in the last bits; errors grow with depth.
    static let featureTolerance: Float = 1e-4
    static let logitTolerance: Float = 1e-4

    @Test func everyFixtureModelLoads() throws {
        #expect(Fixtures.modelNames.count >= 2)
        for name in Fixtures.modelNames {
            _ = try BlipModel(folder: Fixtures.modelFolder(name))
        }
    }

    /// The image pipeline of the model's own preprocessor config: file → RGB → resize → normalise.
    @Test(arguments: cases)
    func pixelValuesMatch(model name: String, image: String) throws {
        let model = try #require(Self.models[name])
        let golden = try Fixtures.golden(model: name, image: image)
        let p = model.preprocessor
        let decoded = try ImageDecoder.decode(try Fixtures.imageBytes(image))
        let resized = BicubicResize.resize(decoded, width: p.imageSize, height: p.imageSize)
        #expect(resized.pixels == (try golden.uint8s("resized")), "\(name)/\(image): resized uint8 differs from PIL")
        var pixels = [Float](repeating: .nan, count: 3 * p.imageSize * p.imageSize)
        pixels.withUnsafeMutableBufferPointer {
            ImageNormalizer(imageSize: p.imageSize, mean: p.imageMean, std: p.imageStd, rescaleFactor: p.rescaleFactor)
                .pixelValues(from: decoded, into: $0)
        }
        let d = Difference(actual: pixels, expected: try golden.floats("pixel_values"))
        #expect(d.absolute == 0, "\(name)/\(image) pixel_values: \(d)")
        print("measured: pixel_values \(name)/\(image) \(d)")
    }

    @Test(arguments: cases)
    func visionFeaturesMatch(model name: String, image: String) throws {
        let model = try #require(Self.models[name])
        let golden = try Fixtures.golden(model: name, image: image)
        let pixels = try golden.floats("pixel_values")
        let expected = try golden.floats("vision_features")
        let vc = model.config.vision
        #expect(expected.count == vc.tokenCount * vc.hiddenSize)
        var features = [Float](repeating: .nan, count: expected.count)
        pixels.withUnsafeBufferPointer { p in
            features.withUnsafeMutableBufferPointer { f in
                model.encodeImage(pixels: p.baseAddress!, into: f.baseAddress!, state: VisionState(config: vc))
            }
        }
        let d = Difference(actual: features, expected: expected)
        #expect(d.relative < Self.featureTolerance, "\(name)/\(image): \(d)")
        print("measured: vision_features \(name)/\(image) \(d)")
    }

    @Test func fixturesCoverEveryModel() {
        #expect(Set(Self.logitCases.map(\.0)) == Set(Fixtures.modelNames))
    }

    @Test(arguments: logitCases)
    func firstStepLogitsMatch(model name: String, image: String) throws {
        let model = try #require(Self.models[name])
        let golden = try Fixtures.golden(model: name, image: image)
        let features = try golden.floats("vision_features")
        for (key, prefix) in [("first_logits", [Int32(30522)]), ("first_logits_prompt", [30522, 1037, 3861, 1997])] {
            let expected = try golden.floats(key)
            let logits: [Float] = try features.withUnsafeBufferPointer { f in
                let session = model.makeSession(features: f.baseAddress!, maxRows: 1, maxLength: 8)
                var last: [Float] = []
                for token in prefix { last = Array(try session.step([token])) }
                return last
            }
            let d = Difference(actual: logits, expected: expected)
            #expect(d.relative < Self.logitTolerance, "\(name)/\(image) \(key): \(d)")
            print("measured: \(key) \(name)/\(image) \(d)")
        }
    }

    @Test func beamRowsStayIndependentAfterReorder() throws {
        // Three rows that took different paths must each give the logits a single row gives.
        let name = try #require(Fixtures.modelNames.first)
        let model = try #require(Self.models[name])
        let (model_, image) = try #require(Self.cases.first { $0.0 == name })
        let features = try Fixtures.golden(model: model_, image: image).floats("vision_features")
        try features.withUnsafeBufferPointer { f in
            func single(_ tokens: [Int32]) throws -> [Float] {
                let s = model.makeSession(features: f.baseAddress!, maxRows: 1, maxLength: 8)
                var last: [Float] = []
                for t in tokens { last = Array(try s.step([t])) }
                return last
            }
            let s = model.makeSession(features: f.baseAddress!, maxRows: 3, maxLength: 8)
            _ = try s.step([30522])
            s.reorder([0, 0, 0])
            _ = try s.step([1037, 2000, 3000])
            s.reorder([2, 0, 0])   // row 0 continues "3000", rows 1 and 2 continue "1037"
            let logits = Array(try s.step([5, 6, 7]))
            let vocab = model.config.text.vocabSize
            let expectations: [[Int32]] = [[30522, 3000, 5], [30522, 1037, 6], [30522, 1037, 7]]
            for (row, tokens) in expectations.enumerated() {
                let d = Difference(actual: logits[(row * vocab)..<((row + 1) * vocab)], expected: try single(tokens))
                #expect(d.absolute < 1e-4, "row \(row): \(d)")
            }
        }
    }
}
