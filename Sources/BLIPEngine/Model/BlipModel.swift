import Foundation

/// A loaded `BlipForConditionalGeneration` checkpoint: the vision encoder and the caption decoder,
/// with every size read from its config.json. Immutable and shareable across tasks; per-request
/// state lives in `VisionState` and `DecoderSession`.
public final class BlipModel: @unchecked Sendable {
    // @unchecked: immutable after init; the weight store keeps the file's bytes alive.
    public let folder: ModelFolder
    public let config: BlipConfig
    public let preprocessor: PreprocessorConfig
    public let vision: VisionEncoder
    public let text: TextDecoder
    /// The precision asked for and what it runs as on this CPU (``PrecisionPlan``).
    public let precision: PrecisionPlan
    private let weights: WeightStore

    /// Loads and validates the folder: config.json (absent keys → transformers' defaults),
    /// preprocessor_config.json (optional) and the weights — model.safetensors, else its shards,
    /// else pytorch_model.bin (read without executing its pickle), else its shards (every tensor checked by name,
    /// shape and dtype; unknown or missing tensors are errors). `precision` chooses the products'
    /// number format (``Precision``), as this CPU can run it (``PrecisionPlan/make(_:flags:isa:)``).
    public init(folder: ModelFolder, precision: Precision = .float32) throws(ModelError) {
        BLASRuntime.useEngineThreading()
        self.folder = folder
        config = try BlipConfig.load(from: folder.config)
        preprocessor = try PreprocessorConfig.load(folder: folder, visionImageSize: config.vision.imageSize)
        var files: [SafeTensorsFile] = []
        let pytorch = folder.weightsArePyTorch
        for url in try folder.weightFiles() {
            files.append(pytorch ? try SafeTensorsFile(pytorchCheckpoint: url) : try SafeTensorsFile(url: url))
        }
        weights = try WeightStore(files: files)
        // One file: its header's digest (a .bin: its pickle's), as before shards were read; shards:
        // the digest of theirs. Then the file read, so that which form of a repository was loaded shows.
        let version = Self.snapshotRevision(folder.url) ?? "sha256:" + (files.count == 1 ? files[0].headerDigest
            : SafeTensorsFile.digest(Array(files.map(\.headerDigest).joined(separator: "\n").utf8)))
        revision = "\(version) (\(folder.weightsDescriptor.lastPathComponent))"
        let plan = PrecisionPlan.make(precision)
        let layers = try LayerPrecision(plan)
        vision = try VisionEncoder(weights, config: config.vision, precision: layers)
        text = try TextDecoder(weights, config: config.text, tieWordEmbeddings: config.tieWordEmbeddings,
                               precision: layers)
        self.precision = plan
        let descriptor = folder.weightsDescriptor
        let attributes = try? FileManager.default.attributesOfItem(atPath: descriptor.path)
        let size = (attributes?[.size] as? NSNumber)?.intValue ?? -1
        let modified = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        identity = "\(folder.url.standardizedFileURL.path) \(size) \(modified)"
        try weights.checkAllUsed()
        weightsPath = descriptor.path
        weightsStamp = files.count == 1 ? files[0].fileStamp : (SafeTensorsFile.FileStamp.current(path: descriptor.path) ?? files[0].fileStamp)
    }

    /// Copies the weights out of the mapped file into memory this process owns, safe while
    /// captions run (``SafeTensorsFile/takeOwnership()``): from then on nothing done to the file
    /// can crash the process or change the model. Loading maps the file so that start-up costs no
    /// more than the page cache; the daemon calls this right after it reports READY.
    /// - Returns: The bytes copied (0 when already owned).
    /// - Throws: `ModelError` when the file changed during the copy (load the model again).
    @discardableResult
    public func ownWeights() throws(ModelError) -> Int {
        var copied = 0
        for file in weights.files { copied += try file.takeOwnership() }
        return copied
    }

    /// Bytes of the weights file given back because a copy replaces them: the float32 matrices a
    /// reduced precision converted (`--precision bf16|int8`).
    public var releasedWeightBytes: Int { weights.files.reduce(0) { $0 + $1.releasedBytes } }

    /// Whether ``ownWeights()`` has finished.
    public var ownsWeights: Bool { weights.files.allSatisfy(\.isOwned) }

    /// The weights file (a sharded checkpoint: its index), and what it was (inode, size, mtime)
    /// when it was read: the model keeps
    /// what it read whatever happens to the file afterwards; a changed stamp means a reload
    /// (SIGHUP) would load something else.
    public let weightsPath: String
    public let weightsStamp: SafeTensorsFile.FileStamp

    /// Which version of the checkpoint this is and which of its files was read: the Hugging Face
    /// snapshot revision when the folder is a hub-cache snapshot (`…/models--OWNER--NAME/snapshots/REVISION`),
    /// else `sha256:` and the start of the weights header's digest (a `pytorch_model.bin`: its
    /// pickle's), then the weights file in parentheses: `sha256:0123456789abcdef (model.safetensors)`,
    /// `353689b… (pytorch_model.bin)`.
    public let revision: String

    static func snapshotRevision(_ url: URL) -> String? {
        let parts = url.standardizedFileURL.pathComponents
        guard let i = parts.lastIndex(of: "snapshots"), i > 0, parts[i - 1].hasPrefix("models--"), i + 1 < parts.count else { return nil }
        return parts[i + 1]
    }

    /// A short identifier for logs and responses: the folder name, or the hub repository when the
    /// folder is a Hugging Face cache snapshot.
    public var modelID: String {
        let path = folder.url.standardizedFileURL.path
        if let range = path.range(of: "models--") {
            let rest = path[range.upperBound...].split(separator: "/").first ?? ""
            return rest.replacingOccurrences(of: "--", with: "/")
        }
        return folder.url.lastPathComponent
    }

    /// What distinguishes this checkpoint from any other for caches: the folder, and the weights
    /// file's size and modification time when it was loaded.
    public let identity: String

    /// Runs the vision encoder on normalised pixels (3, S, S) and returns the features
    /// (tokens, hidden) in `features`, which must hold `config.vision.tokenCount · hidden` floats.
    public func encodeImage(pixels: UnsafePointer<Float>, into features: UnsafeMutablePointer<Float>, state: VisionState) {
        vision.encode(pixels: pixels, into: features, state: state)
    }

    /// A decoding session for one image's features (projected for this session alone).
    public func makeSession(features: UnsafePointer<Float>, maxRows: Int, maxLength: Int) -> DecoderSession {
        makeSession(memory: makeMemory(features: features), maxRows: maxRows, maxLength: maxLength)
    }

    /// One image's features projected for cross-attention, to share among its sessions. With
    /// `imageTokens` below the model's token count only the first rows of `features` are attended
    /// to: the counterpart of `VisionEncoder.encode(pixels:into:state:tokens:)` for the warm-up.
    public func makeMemory(features: UnsafePointer<Float>, imageTokens: Int? = nil) -> ImageMemory {
        let tokens = imageTokens ?? config.vision.tokenCount
        precondition((1...config.vision.tokenCount).contains(tokens))
        return ImageMemory(decoder: text, features: features, imageTokens: tokens)
    }

    /// A decoding session over an image's shared memory.
    public func makeSession(memory: ImageMemory, maxRows: Int, maxLength: Int) -> DecoderSession {
        DecoderSession(decoder: text, memory: memory, maxRows: maxRows,
                       maxLength: min(maxLength, config.text.maxPositionEmbeddings))
    }
}
