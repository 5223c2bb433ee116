import Foundation
import Testing
import BLIPTestSupport
@testable import BLIPEngine

/// Issue 22 (checkpoints, in part): a checkpoint saved as safetensors shards with
/// `model.safetensors.index.json` loads as its single-file form does, and captions identically.
@Suite("Sharded safetensors checkpoints")
struct ShardedCheckpointTests {
    /// A copy of fixture model `name` whose `model.safetensors` is split into `count` shards (tensors
    /// in name order, consecutive runs), with the index transformers writes.
    static func sharded(_ name: String, into count: Int, edit: (inout [String: String]) -> Void = { _ in }) throws -> URL {
        try sharded(from: Fixtures.modelFolder(name).url, into: count, edit: edit)
    }

    /// The same for the model folder `source`.
    static func sharded(from source: URL, into count: Int, edit: (inout [String: String]) -> Void = { _ in }) throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("blip-sharded-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for file in try FileManager.default.contentsOfDirectory(atPath: source.path) where file != "model.safetensors" {
            try FileManager.default.copyItem(at: source.appendingPathComponent(file), to: folder.appendingPathComponent(file))
        }
        let data = try Data(contentsOf: source.appendingPathComponent("model.safetensors"))
        let headerLength = Int(data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self).littleEndian })
        let header = try #require(try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + headerLength))) as? [String: Any])
        let body = data.subdata(in: (8 + headerLength)..<data.count)
        let names = header.keys.filter { $0 != "__metadata__" }.sorted()
        var weightMap: [String: String] = [:]
        let perShard = (names.count + count - 1) / count
        for shard in 0..<count {
            let file = String(format: "model-%05d-of-%05d.safetensors", shard + 1, count)
            var shardHeader: [String: Any] = [:]
            var shardBody = Data()
            for name in names.dropFirst(shard * perShard).prefix(perShard) {
                let entry = try #require(header[name] as? [String: Any])
                let offsets = try #require(entry["data_offsets"] as? [Int])
                var moved = entry
                moved["data_offsets"] = [shardBody.count, shardBody.count + offsets[1] - offsets[0]]
                shardBody.append(body.subdata(in: offsets[0]..<offsets[1]))
                shardHeader[name] = moved
                weightMap[name] = file
            }
            var json = try JSONSerialization.data(withJSONObject: shardHeader, options: [.sortedKeys])
            while json.count % 8 != 0 { json.append(0x20) }
            var out = Data()
            withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
            out.append(json)
            out.append(shardBody)
            try out.write(to: folder.appendingPathComponent(file))
        }
        edit(&weightMap)
        let index: [String: Any] = ["metadata": ["total_size": body.count], "weight_map": weightMap]
        try JSONSerialization.data(withJSONObject: index, options: [.sortedKeys])
            .write(to: folder.appendingPathComponent("model.safetensors.index.json"))
        return folder
    }

    @Test func shardsCaptionIdenticallyToTheSingleFile() throws {
        let folder = try Self.sharded("tiny-a", into: 3)
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("model.safetensors").path))
        let single = try Captioner(folder: Fixtures.modelFolder("tiny-a"))
        let sharded = try Captioner(folder: ModelFolder.locate(explicit: folder.path))
        #expect(sharded.model.weightsPath.hasSuffix("model.safetensors.index.json"))
        let image = try Fixtures.imageBytes("rocket.png")
        for parameters in [DecodeLoopTests.parameters(beams: 1, newTokens: 8), DecodeLoopTests.parameters(beams: 3, newTokens: 8, returns: 2)] {
            let expected = try single.caption(image: image, parameters: parameters).candidates
            #expect(try sharded.caption(image: image, parameters: parameters).candidates == expected)
            #expect(expected.first?.tokenIDs.count ?? 0 > 1)
        }
        #expect(try sharded.model.ownWeights() > 0 && sharded.model.ownsWeights)
    }

    @Test func aMissingShardIsNamed() throws {
        let folder = try Self.sharded("tiny-a", into: 2)
        defer { try? FileManager.default.removeItem(at: folder) }
        let missing = folder.appendingPathComponent("model-00002-of-00002.safetensors")
        try FileManager.default.removeItem(at: missing)
        #expect(throws: ModelError.missingFile(missing.path)) { try BlipModel(folder: ModelFolder(url: folder)) }
    }

    @Test func anIndexNamingAFileOutsideTheFolderIsRefused() throws {
        let folder = try Self.sharded("tiny-a", into: 2) { map in
            if let name = map.keys.sorted().first { map[name] = "../elsewhere.safetensors" }
        }
        defer { try? FileManager.default.removeItem(at: folder) }
        let error = try #require(throws: ModelError.self) { try BlipModel(folder: ModelFolder(url: folder)) }
        #expect("\(error)".contains("not a .safetensors file in this folder"), "\(error)")
    }

    @Test func modelSafetensorsIsPreferredWhenBothArePresent() throws {
        let folder = try Self.sharded("tiny-a", into: 2)
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.copyItem(at: Fixtures.modelFolder("tiny-a").weights, to: folder.appendingPathComponent("model.safetensors"))
        let model = try BlipModel(folder: ModelFolder(url: folder))
        #expect(model.weightsPath.hasSuffix("/model.safetensors"))
    }
}
