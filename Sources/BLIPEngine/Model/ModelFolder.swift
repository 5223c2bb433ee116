import Foundation

/// Where a Hugging Face BLIP checkpoint lives on disk, and how to find one.
public struct ModelFolder: Sendable, Equatable {
    public let url: URL
    public var config: URL { url.appendingPathComponent("config.json") }
    public var weights: URL { url.appendingPathComponent("model.safetensors") }
    /// A checkpoint saved in several safetensors files names them here (read when `weights` is absent).
    public var shardIndex: URL { url.appendingPathComponent("model.safetensors.index.json") }
    /// `torch.save(state_dict)`, as transformers 4.x saved models: read when no safetensors form is there.
    public var pytorchWeights: URL { url.appendingPathComponent("pytorch_model.bin") }
    public var pytorchShardIndex: URL { url.appendingPathComponent("pytorch_model.bin.index.json") }

    /// The weight files the engine reads, in order of preference: safetensors (one file, then
    /// shards), then PyTorch's (one file, then shards). Hub repositories often hold several forms.
    public var weightCandidates: [URL] { [weights, shardIndex, pytorchWeights, pytorchShardIndex] }

    /// Weight files of other frameworks: a folder holding only these gets a "convert it" error.
    public var foreignWeights: [URL] {
        ["tf_model.h5", "flax_model.msgpack"].map { url.appendingPathComponent($0) }
    }

    /// The file that describes the weights: the first of ``weightCandidates`` present
    /// (`model.safetensors` when none is).
    public var weightsDescriptor: URL {
        weightCandidates.first { FileManager.default.fileExists(atPath: $0.path) } ?? weights
    }

    /// Whether the weights are PyTorch's (`pytorch_model.bin` or its shards), not safetensors.
    public var weightsArePyTorch: Bool {
        let descriptor = weightsDescriptor
        return descriptor == pytorchWeights || descriptor == pytorchShardIndex
    }

    /// The files holding the weights: `model.safetensors`, the shards its index names,
    /// `pytorch_model.bin`, or the shards of that.
    /// - Throws: `ModelError.missingFile` when none is there or a shard is missing;
    ///   `.convertCheckpoint` when the folder holds only another framework's weights
    ///   (`tf_model.h5`, `flax_model.msgpack`); `.badSafeTensors` for an index that cannot be used.
    public func weightFiles() throws(ModelError) -> [URL] {
        let descriptor = weightsDescriptor
        guard FileManager.default.fileExists(atPath: descriptor.path) else { throw missingWeights() }
        switch descriptor {
        case shardIndex: return try ShardIndex.shards(shardIndex)
        case pytorchShardIndex: return try ShardIndex.shards(pytorchShardIndex, fileExtension: ".bin")
        default: return [descriptor]
        }
    }

    /// The error for a folder without weights the engine reads.
    func missingWeights() -> ModelError {
        if let foreign = foreignWeights.first(where: { FileManager.default.fileExists(atPath: $0.path) }) {
            return .convertCheckpoint(foreign.path, "the folder has no model.safetensors or pytorch_model.bin, only \(foreign.lastPathComponent), another framework's weights")
        }
        return .missingFile(weights.path)
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
    ///   chosen folder lacks config.json, weights (model.safetensors, pytorch_model.bin or the index of
    ///   either's shards) or vocab.txt; `.convertCheckpoint` when its only weights are another
    ///   framework's.
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
        guard FileManager.default.fileExists(atPath: folder.config.path) else { throw .missingFile(folder.config.path) }
        guard FileManager.default.fileExists(atPath: folder.weightsDescriptor.path) else { throw folder.missingWeights() }
        if !FileManager.default.fileExists(atPath: folder.vocabulary.path) && !FileManager.default.fileExists(atPath: folder.tokenizerJSON.path) {
            throw .missingFile(folder.vocabulary.path)
        }
        return folder
    }
}
