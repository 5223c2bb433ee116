import Foundation
import Testing
import BLIPTestSupport
@testable import BLIPEngine

@Suite("Model folder loading")
struct ModelLoadingTests {
    let checkpoint = SyntheticCheckpoint()

    func load(_ dir: URL) throws(ModelError) -> BlipModel {
        try BlipModel(folder: ModelFolder(url: dir))
    }

    @Test func loadsCompleteFolderAndAppliesDefaults() throws {
        let model = try load(try checkpoint.write())
        #expect(model.config.vision.hiddenSize == 16)
        #expect(model.config.vision.layerNormEps == 1e-5)    // absent → BlipVisionConfig default
        #expect(model.config.text.layerNormEps == 1e-12)     // absent → BlipTextConfig default
        #expect(model.config.text.encoderHiddenSize == 16)   // forced to the vision width by BlipConfig
        #expect(model.config.text.padTokenID == 0)
        #expect(model.preprocessor.imageSize == 32)
        #expect(model.preprocessor.imageMean == [0.48145466, 0.4578275, 0.40821073])
    }

    @Test func hubStyleConfigOfBlipLargeTakesDefaults() throws {
        // The hub config.json of blip-image-captioning-large stores only non-default values.
        let json = #"{"text_config": {"encoder_hidden_size": 1024}, "vision_config": {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 4096}}"#
        let config = try JSONDecoder().decode(BlipConfig.self, from: Data(json.utf8))
        #expect(config.vision.imageSize == 384 && config.vision.patchSize == 16 && config.vision.tokenCount == 577)
        #expect(config.text.hiddenSize == 768 && config.text.numHiddenLayers == 12 && config.text.vocabSize == 30524)
        #expect(config.text.numAttentionHeads == 8 && config.text.maxPositionEmbeddings == 512)
        #expect(config.text.encoderHiddenSize == 1024 && config.text.bosTokenID == 30522 && config.text.sepTokenID == 102)
    }

    @Test func missingTensorIsNamed() throws {
        let dir = try checkpoint.write { $0.removeAll { $0.0 == "text_decoder.bert.encoder.layer.0.crossattention.self.key.bias" } }
        #expect(throws: ModelError.missingTensor("text_decoder.bert.encoder.layer.0.crossattention.self.key.bias")) { try load(dir) }
    }

    @Test func wrongShapeIsNamed() throws {
        let dir = try checkpoint.write { list in
            let i = list.firstIndex { $0.0 == "vision_model.encoder.layers.0.mlp.fc1.weight" }!
            list[i].1 = [33, 16]
        }
        #expect(throws: ModelError.shapeMismatch(tensor: "vision_model.encoder.layers.0.mlp.fc1.weight", expected: [32, 16], found: [33, 16])) {
            try load(dir)
        }
    }

    @Test func unknownTensorIsRejected() throws {
        let dir = try checkpoint.write { $0.append(("text_decoder.bert.pooler.dense.weight", [8, 8])) }
        #expect(throws: ModelError.unexpectedTensor("text_decoder.bert.pooler.dense.weight")) { try load(dir) }
    }

    @Test func truncatedWeightsFileIsReported() throws {
        let dir = try checkpoint.write()
        let file = dir.appendingPathComponent("model.safetensors")
        let data = try Data(contentsOf: file)
        try data.prefix(data.count - 100).write(to: file)
        let error = try #require(throws: ModelError.self) { try load(dir) }
        #expect("\(error)".contains("outside"), "\(error)")
        #expect("\(error)".contains("model.safetensors"), "\(error)")
    }

    @Test(arguments: [
        ("not json", Array("{not json}".utf8), "not valid JSON"),
        ("bad dtype", Array(#"{"a": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]}}"#.utf8), "F64"),
        ("size mismatch", Array(#"{"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}"#.utf8), "do not hold"),
        ("overlap", Array(#"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}"#.utf8), "overlap"),
    ])
    func badHeadersAreReported(name: String, header: [UInt8], expected: String) throws {
        var data = Data()
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(contentsOf: header)
        data.append(contentsOf: [UInt8](repeating: 0, count: 16))
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("bad-\(UUID().uuidString).safetensors")
        try data.write(to: url)
        let error = try #require(throws: ModelError.self) { try SafeTensorsFile(url: url) }
        #expect("\(error)".contains(expected), "\(name): \(error)")
    }

    @Test func absurdHeaderLengthIsRejectedWithoutReadingIt() throws {
        var data = Data()
        withUnsafeBytes(of: UInt64.max.littleEndian) { data.append(contentsOf: $0) }
        data.append(contentsOf: [UInt8](repeating: 0x7b, count: 32))
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("huge-\(UUID().uuidString).safetensors")
        try data.write(to: url)
        let error = try #require(throws: ModelError.self) { try SafeTensorsFile(url: url) }
        #expect("\(error)".contains("header length"), "\(error)")
    }

    @Test func missingFilesAreNamed() throws {
        let dir = try checkpoint.write()
        try FileManager.default.removeItem(at: dir.appendingPathComponent("config.json"))
        #expect(throws: ModelError.missingFile(dir.appendingPathComponent("config.json").path)) {
            try ModelFolder.locate(explicit: dir.path)
        }
    }

    @Test func locatesFromEnvironmentAndHubCache() throws {
        let dir = try checkpoint.write()
        #expect(try ModelFolder.locate(explicit: nil, environment: ["BLIP_MODEL": dir.path]).url.path == dir.path)
        let hf = FileManager.default.temporaryDirectory.appendingPathComponent("hf-\(UUID().uuidString)")
        let snapshot = hf.appendingPathComponent("hub/models--Salesforce--blip-image-captioning-large/snapshots/abc123")
        try FileManager.default.createDirectory(at: snapshot.deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: dir, to: snapshot)
        let found = try ModelFolder.locate(explicit: nil, environment: ["HF_HOME": hf.path])
        #expect(found.url.lastPathComponent == "abc123")
        #expect(try BlipModel(folder: found).modelID == "Salesforce/blip-image-captioning-large")
        let error = try #require(throws: ModelError.self) { try ModelFolder.locate(explicit: nil, environment: ["HOME": "/nonexistent"]) }
        #expect("\(error)".hasPrefix("model not found"))
    }

    @Test func unsupportedActivationIsExplained() throws {
        let json = #"{"vision_config": {"hidden_act": "quick_gelu"}}"#
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("cfg-\(UUID().uuidString).json")
        try json.write(to: url, atomically: true, encoding: .utf8)
        let error = try #require(throws: ModelError.self) { try BlipConfig.load(from: url) }
        #expect("\(error)".contains("quick_gelu"))
    }
}
