import Foundation

/// Where a Hugging Face BLIP checkpoint lives on disk, and how to find one.
public struct ModelFolder: Sendable, Equatable {
    public let url: URL
    public var config: URL { url.appendingPathComponent("config.json") }
    public var weights: URL { url.appendingPathComponent("model.safetensors") }
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
    ///   chosen folder lacks config.json, model.safetensors or vocab.txt.
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
            .filter { fm.fileExists(atPath: $0.appendingPathComponent("model.safetensors").path) }
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
        for file in [folder.config, folder.weights] where !FileManager.default.fileExists(atPath: file.path) {
            throw .missingFile(file.path)
        }
        if !FileManager.default.fileExists(atPath: folder.vocabulary.path) && !FileManager.default.fileExists(atPath: folder.tokenizerJSON.path) {
            throw .missingFile(folder.vocabulary.path)
        }
        return folder
    }
}
