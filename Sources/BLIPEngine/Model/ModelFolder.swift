import Foundation

/// Where a Hugging Face BLIP checkpoint lives on disk, and how to find one.
public struct ModelFolder: Sendable, Equatable {
    public let url: URL
    public var config: URL { url.appendingPathComponent("config.json") }
    public var weights: URL { url.appendingPathComponent("model.safetensors") }
    /// A checkpoint saved in several safetensors files names them here (read when `weights` is absent).
    public var shardIndex: URL { url.appendingPathComponent("model.safetensors.index.json") }

    /// The file that describes the weights: `model.safetensors`, else the shard index when only
    /// that is present (`model.safetensors` is preferred when both are).
    public var weightsDescriptor: URL {
        let fm = FileManager.default
        return !fm.fileExists(atPath: weights.path) && fm.fileExists(atPath: shardIndex.path) ? shardIndex : weights
    }

    /// The safetensors files holding the weights: `model.safetensors`, or the shards its index names.
    /// - Throws: `ModelError.missingFile` when neither is there or a shard is missing;
    ///   `.badSafeTensors` for an index that cannot be used.
    public func weightFiles() throws(ModelError) -> [URL] {
        let descriptor = weightsDescriptor
        guard FileManager.default.fileExists(atPath: descriptor.path) else { throw .missingFile(weights.path) }
        return descriptor == shardIndex ? try ShardIndex.shards(shardIndex) : [weights]
    }
    public var vocabulary: URL { url.appendingPathComponent("vocab.txt") }
    /// transformers 5's `save_pretrained` writes only this for the tokenizer.
    public var tokenizerJSON: URL { url.appendingPathComponent("tokenizer.json") }
    public var preprocessor: URL { url.appendingPathComponent("preprocessor_config.json") }
    public var processor: URL { url.appendingPathComponent("processor_config.json") }

    public static let hubRepository = "Salesforce/blip-image-captioning-large"

    public init(url: URL) { self.url = url }

    /// Finds the model: `explicit` (`--model DIR`), then `$BLIP_MODEL`, then the Hugging Face cache
    /// (`$HF_HOME/hub` or `~/.cache/huggingface/hub`, newest snapshot of
    /// `models--Salesforce--blip-image-captioning-large`).
    /// - Throws: `ModelError.notFound` listing every place searched; `.missingFile` when the
    ///   chosen folder lacks config.json, model.safetensors (or model.safetensors.index.json) or vocab.txt.
    public static func locate(explicit: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws(ModelError) -> ModelFolder {
        if let explicit { return try checked(URL(fileURLWithPath: explicit)) }
        if let fromEnv = environment["BLIP_MODEL"], !fromEnv.isEmpty { return try checked(URL(fileURLWithPath: fromEnv)) }
        let hubRoot: URL
        if let hfHome = environment["HF_HOME"], !hfHome.isEmpty {
            hubRoot = URL(fileURLWithPath: hfHome).appendingPathComponent("hub")
        } else if let hubCache = environment["HF_HUB_CACHE"], !hubCache.isEmpty {
            hubRoot = URL(fileURLWithPath: hubCache)
        } else {
            let home = environment["HOME"] ?? NSHomeDirectory()
            hubRoot = URL(fileURLWithPath: home).appendingPathComponent(".cache/huggingface/hub")
        }
        let snapshots = hubRoot.appendingPathComponent("models--" + hubRepository.replacingOccurrences(of: "/", with: "--"))
            .appendingPathComponent("snapshots")
        let fm = FileManager.default
        let candidates = ((try? fm.contentsOfDirectory(at: snapshots, includingPropertiesForKeys: [.contentModificationDateKey])) ?? [])
            .filter { fm.fileExists(atPath: ModelFolder(url: $0).weightsDescriptor.path) }
            .sorted {
                let a = (try? $0.resourceValues(forKeys: [.contentModificationDateKey]).contentModificationDate) ?? .distantPast
                let b = (try? $1.resourceValues(forKeys: [.contentModificationDateKey]).contentModificationDate) ?? .distantPast
                return a > b
            }
        if let newest = candidates.first { return try checked(newest) }
        throw .notFound(searched: ["--model", "$BLIP_MODEL", snapshots.path + "/*"])
    }

    static func checked(_ url: URL) throws(ModelError) -> ModelFolder {
        let folder = ModelFolder(url: url)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw .notFound(searched: [url.path])
        }
        for file in [folder.config, folder.weightsDescriptor] where !FileManager.default.fileExists(atPath: file.path) {
            throw .missingFile(file.path)
        }
        if !FileManager.default.fileExists(atPath: folder.vocabulary.path) && !FileManager.default.fileExists(atPath: folder.tokenizerJSON.path) {
            throw .missingFile(folder.vocabulary.path)
        }
        return folder
    }
}
