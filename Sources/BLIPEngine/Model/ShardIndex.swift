import Foundation

/// `model.safetensors.index.json` (or `pytorch_model.bin.index.json`), how transformers saves a
/// checkpoint in several files (`save_pretrained(max_shard_size:)`, and many hub repositories):
/// which file holds each tensor. Only `weight_map` is read; `metadata.total_size` is informative.
struct ShardIndex: Decodable {
    /// Tensor name → the file (in the same folder) that holds it.
    let weightMap: [String: String]

    enum CodingKeys: String, CodingKey { case weightMap = "weight_map" }

    /// The shard files the index names, in name order, each checked to exist inside the folder and
    /// to end in `fileExtension` (`.safetensors`, or `.bin` for a sharded `pytorch_model.bin`).
    /// - Throws: `ModelError.badSafeTensors` for an index that does not parse or names a file
    ///   outside the folder; `.missingFile` for a shard that is not there.
    static func shards(_ index: URL, fileExtension: String = ".safetensors") throws(ModelError) -> [URL] {
        let parsed: ShardIndex
        do {
            parsed = try JSONDecoder().decode(ShardIndex.self, from: Data(contentsOf: index))
        } catch {
            throw .badSafeTensors(index.path, "the shard index does not parse (\(error)); download the checkpoint again")
        }
        let folder = index.deletingLastPathComponent()
        var shards: [URL] = []
        for name in Set(parsed.weightMap.values).sorted() {
            guard !name.contains("/"), name != "..", name.hasSuffix(fileExtension) else {
                throw .badSafeTensors(index.path, "the shard index names \(name.prefix(200)), which is not a \(fileExtension) file in this folder")
            }
            let shard = folder.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: shard.path) else { throw .missingFile(shard.path) }
            shards.append(shard)
        }
        guard !shards.isEmpty else { throw .badSafeTensors(index.path, "the shard index names no file") }
        return shards
    }
}
