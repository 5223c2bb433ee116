import Foundation
import Testing
import BLIPTestSupport
@testable import BLIPEngine

/// Issue 22 (checkpoints): `pytorch_model.bin` read by the restricted reader, the preference between
/// weight files, the "convert it" errors, and the BLIP-base-shaped tiny model against transformers
/// (Tests/Fixtures/checkpoints, written by scripts/reference/make_checkpoint_fixtures.py).
@Suite("PyTorch checkpoints")
struct PyTorchCheckpointTests {
    static let fixtures = Fixtures.root.appendingPathComponent("checkpoints")
    static let tinyBase = fixtures.appendingPathComponent("tiny-base")
    static let hostile = fixtures.appendingPathComponent("hostile")
    /// What the hostile pickles would create if they were executed.
    static let marker = "/tmp/blip-captiond-pickle-ran"

    /// A model folder in a temporary directory: tiny-base's config and processor files, the shared
    /// vocab.txt, and `weights` (file in the fixture folder → name in the new one).
    static func folder(_ weights: [(URL, String)]) throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("blip-checkpoint-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for file in ["config.json", "preprocessor_config.json", "tokenizer_config.json", "special_tokens_map.json"] {
            try FileManager.default.copyItem(at: tinyBase.appendingPathComponent(file), to: folder.appendingPathComponent(file))
        }
        try FileManager.default.copyItem(at: Fixtures.root.appendingPathComponent("vocab.txt"), to: folder.appendingPathComponent("vocab.txt"))
        for (source, name) in weights {
            try FileManager.default.copyItem(at: source, to: folder.appendingPathComponent(name))
        }
        return folder
    }

    static let bin = tinyBase.appendingPathComponent("pytorch_model.bin")
    static let safetensors = tinyBase.appendingPathComponent("model.safetensors")

    // MARK: - The .bin form

    @Test func binCaptionsIdenticallyToItsSafetensorsForm() throws {
        let binFolder = try Self.folder([(Self.bin, "pytorch_model.bin")])
        let stFolder = try Self.folder([(Self.safetensors, "model.safetensors")])
        defer { try? FileManager.default.removeItem(at: binFolder); try? FileManager.default.removeItem(at: stFolder) }
        let fromBin = try Captioner(folder: ModelFolder.locate(explicit: binFolder.path))
        let fromSafetensors = try Captioner(folder: ModelFolder(url: stFolder))
        #expect(fromBin.model.weightsPath.hasSuffix("/pytorch_model.bin"))
        #expect(fromBin.model.revision.hasPrefix("sha256:") && fromBin.model.revision.hasSuffix(" (pytorch_model.bin)"), "\(fromBin.model.revision)")
        #expect(fromSafetensors.model.revision.hasSuffix(" (model.safetensors)"))
        for image in ["rocket.png", "astronaut_q90_420.jpg"] {
            let bytes = try Fixtures.imageBytes(image)
            for parameters in [DecodeLoopTests.parameters(beams: 1, newTokens: 8), DecodeLoopTests.parameters(beams: 3, newTokens: 8, returns: 2)] {
                let expected = try fromSafetensors.caption(image: bytes, parameters: parameters).candidates
                #expect(try fromBin.caption(image: bytes, parameters: parameters).candidates == expected)
            }
        }
        // The weights then move into owned memory like a safetensors file's.
        #expect(try fromBin.model.ownWeights() > 0 && fromBin.model.ownsWeights)
        #expect(try fromBin.caption(image: try Fixtures.imageBytes("rocket.png"), parameters: DecodeLoopTests.parameters(beams: 1, newTokens: 8)).candidates
                == fromSafetensors.caption(image: try Fixtures.imageBytes("rocket.png"), parameters: DecodeLoopTests.parameters(beams: 1, newTokens: 8)).candidates)
    }

    @Test func binHoldsWhatTorchSaveWrites() throws {
        let file = try SafeTensorsFile(pytorchCheckpoint: Self.bin)
        let embeddings = try #require(file.entries["text_decoder.bert.embeddings.word_embeddings.weight"])
        let decoder = try #require(file.entries["text_decoder.cls.predictions.decoder.weight"])
        #expect(embeddings.dtype == .f16 && embeddings.shape == [30524, 4])
        #expect(decoder.range == embeddings.range, "tied weights share one storage")
        #expect(file.entries["text_decoder.cls.predictions.bias"]?.dtype == .bf16)
        #expect(file.entries["text_decoder.bert.embeddings.position_ids"]?.dtype == .i64)
        #expect(file.entries["vision_model.embeddings.patch_embedding.weight"]?.dtype == .f32)
        // torch ≥ 2 aligns every storage to 64 bytes: float32 weights are used in place.
        let patch = try #require(file.entries["vision_model.embeddings.patch_embedding.weight"])
        #expect(Int(bitPattern: file.bytes(of: patch).baseAddress) % 64 == 0)
    }

    @Test func shardedSafetensorsOfTheBaseShapedModelCaptionIdentically() throws {
        let stFolder = try Self.folder([(Self.safetensors, "model.safetensors")])
        let sharded = try ShardedCheckpointTests.sharded(from: stFolder, into: 3)
        defer { try? FileManager.default.removeItem(at: stFolder); try? FileManager.default.removeItem(at: sharded) }
        let single = try Captioner(folder: ModelFolder(url: stFolder))
        let fromShards = try Captioner(folder: ModelFolder(url: sharded))
        #expect(fromShards.model.revision.hasSuffix(" (model.safetensors.index.json)"))
        let image = try Fixtures.imageBytes("rocket.png")
        let parameters = DecodeLoopTests.parameters(beams: 3, newTokens: 8, returns: 2)
        #expect(try fromShards.caption(image: image, parameters: parameters).candidates == single.caption(image: image, parameters: parameters).candidates)
    }

    @Test func safetensorsIsPreferredToTheBin() throws {
        let both = try Self.folder([(Self.bin, "pytorch_model.bin"), (Self.safetensors, "model.safetensors")])
        defer { try? FileManager.default.removeItem(at: both) }
        let model = try BlipModel(folder: ModelFolder(url: both))
        #expect(model.weightsPath.hasSuffix("/model.safetensors"))
        #expect(model.revision.hasSuffix(" (model.safetensors)"))
        #expect(ModelFolder(url: both).weightCandidates.map(\.lastPathComponent)
                == ["model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json"])
    }

    @Test func shardedBinLoadsThroughItsIndex() throws {
        let folder = try Self.folder([(Self.bin, "pytorch_model-00001-of-00001.bin")])
        defer { try? FileManager.default.removeItem(at: folder) }
        let names = try SafeTensorsFile(pytorchCheckpoint: Self.bin).entries.keys
        let index: [String: Any] = ["metadata": [:] as [String: Any], "weight_map": Dictionary(uniqueKeysWithValues: names.map { ($0, "pytorch_model-00001-of-00001.bin") })]
        try JSONSerialization.data(withJSONObject: index).write(to: folder.appendingPathComponent("pytorch_model.bin.index.json"))
        let model = try BlipModel(folder: ModelFolder(url: folder))
        #expect(model.weightsPath.hasSuffix("/pytorch_model.bin.index.json"))
    }

    // MARK: - Base-shaped model against transformers

    struct BaseCase: CustomTestStringConvertible, Sendable {
        var form: String
        var reference: CaptionReferenceTests.Case
        var testDescription: String { "\(form)/\(reference.image)/\(reference.name)" }
    }

    static let baseCases: [BaseCase] = {
        guard let data = try? Data(contentsOf: tinyBase.appendingPathComponent("generation.json")),
              let cases = try? JSONDecoder().decode([CaptionReferenceTests.Case].self, from: data) else { return [] }
        return ["pytorch_model.bin", "model.safetensors"].flatMap { form in
            cases.map { var c = $0; c.model = "tiny-base"; return BaseCase(form: form, reference: c) }
        }
    }()

    static let baseCaptioners: [String: Captioner] = {
        var out: [String: Captioner] = [:]
        for (source, name) in [(bin, "pytorch_model.bin"), (safetensors, "model.safetensors")] {
            if let folder = try? folder([(source, name)]), let captioner = try? Captioner(folder: ModelFolder(url: folder)) {
                out[name] = captioner
            }
        }
        return out
    }()

    @Test func baseShapedFixtureIsBaseShaped() throws {
        #expect(Self.baseCases.count >= 40)
        let config = try BlipConfig.load(from: Self.tinyBase.appendingPathComponent("config.json"))
        // BLIP-base: the vision width is the text width (square cross-attention K/V), same head
        // count, patch 16 — sizes the engine reads from config.json.
        #expect(config.vision.hiddenSize == config.text.hiddenSize && config.text.encoderHiddenSize == config.text.hiddenSize)
        #expect(config.vision.numAttentionHeads == config.text.numAttentionHeads && config.vision.patchSize == 16)
    }

    @Test(arguments: baseCases)
    func baseShapedModelMatchesTransformers(_ c: BaseCase) throws {
        let captioner = try #require(Self.baseCaptioners[c.form])
        let r = c.reference
        let result = try captioner.caption(image: try Fixtures.imageBytes(r.image), parameters: r.parameters)
        let got = result.candidates.map(\.tokenIDs)
        if got != r.sequences, let margins = r.greedy_margins, let first = got.first, let expected = r.sequences.first,
           let step = zip(first, expected).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
            let margin = margins.indices.contains(step - r.prompt_length) ? margins[step - r.prompt_length] : .infinity
            #expect(margin < CaptionReferenceTests.nearTie, "\(c.testDescription): diverged at token \(step) with margin \(margin): got \(got), expected \(r.sequences)")
            return
        }
        #expect(got == r.sequences, "\(c.testDescription)")
        #expect(result.candidates.map(\.text) == r.texts, "\(c.testDescription)")
        if let scores = r.scores {
            for (candidate, expected) in zip(result.candidates, scores) {
                #expect(abs(candidate.score - expected) <= 1e-4 * max(1, abs(expected)), "\(c.testDescription): score \(candidate.score), expected \(expected)")
            }
        }
    }

    // MARK: - Refused checkpoints

    @Test(arguments: [("os-system.bin", "posix.system"), ("builtins-eval.bin", "builtins.eval")])
    func aPickleCallingAnythingElseIsRefusedUnrun(_ file: String, _ global: String) throws {
        try? FileManager.default.removeItem(atPath: Self.marker)
        let folder = try Self.folder([(Self.hostile.appendingPathComponent(file), "pytorch_model.bin")])
        defer { try? FileManager.default.removeItem(at: folder) }
        let error = try #require(throws: ModelError.self) { try BlipModel(folder: ModelFolder(url: folder)) }
        guard case .unsafeCheckpoint(let path, let detail) = error else { Issue.record("\(error)"); return }
        #expect(path.hasSuffix("pytorch_model.bin") && detail == "calls \(global)", "\(error)")
        #expect("\(error)".contains("refusing to load") && "\(error)".contains(global), "\(error)")
        #expect(!FileManager.default.fileExists(atPath: Self.marker), "the pickle was executed")
    }

    @Test func legacyTorchFormatAsksForConversion() throws {
        let error = try #require(throws: ModelError.self) { try SafeTensorsFile(pytorchCheckpoint: Self.hostile.appendingPathComponent("legacy.bin")) }
        guard case .convertCheckpoint(_, let detail) = error else { Issue.record("\(error)"); return }
        #expect(detail.contains("legacy format"), "\(error)")
        #expect("\(error)".contains("convert it to model.safetensors"))
    }

    @Test(arguments: ["tf_model.h5", "flax_model.msgpack"])
    func otherFrameworksWeightsAskForConversion(_ name: String) throws {
        let folder = try Self.folder([(Self.hostile.appendingPathComponent("legacy.bin"), name)])
        defer { try? FileManager.default.removeItem(at: folder) }
        let error = try #require(throws: ModelError.self) { try ModelFolder.locate(explicit: folder.path) }
        guard case .convertCheckpoint(let path, _) = error else { Issue.record("\(error)"); return }
        #expect(path.hasSuffix(name))
        #expect(throws: error) { try BlipModel(folder: ModelFolder(url: folder)) }
    }

    @Test func anHDF5FileNamedBinAsksForConversion() throws {
        let source = ArrayByteSource(bytes: TorchCheckpoint.hdf5Magic + [UInt8](repeating: 0, count: 100), path: "x.bin")
        #expect(throws: ModelError.convertCheckpoint("x.bin", "it is an HDF5 file (TensorFlow/Keras weights), not a PyTorch checkpoint")) {
            try TorchCheckpoint.parse(source, path: "x.bin")
        }
    }

    @Test func compressedEntriesAreRefusedByName() throws {
        let error = try #require(throws: ModelError.self) { try SafeTensorsFile(pytorchCheckpoint: Self.hostile.appendingPathComponent("deflated.bin")) }
        #expect("\(error)".contains("is compressed (deflate)"), "\(error)")
    }

    // MARK: - Damaged archives and pickles

    /// Every truncation of the real file is refused with a typed error (never a crash or a hang).
    @Test func truncatedArchivesAreRefused() throws {
        let bytes = [UInt8](try Data(contentsOf: Self.bin))
        var lengths = Array(stride(from: 0, to: bytes.count, by: max(1, bytes.count / 64)))
        lengths += [bytes.count - 1, bytes.count - 22, bytes.count - 23, 21, 4, 30, 100]
        for length in lengths {
            #expect(throws: ModelError.self, "\(length) bytes") {
                try TorchCheckpoint.parse(ArrayByteSource(bytes: Array(bytes.prefix(length)), path: "t"), path: "t")
            }
        }
        #expect(try TorchCheckpoint.parse(ArrayByteSource(bytes: bytes, path: "t"), path: "t").entries.count > 90)
    }

    @Test func centralDirectoryOutOfRangeIsRefused() throws {
        var bytes = [UInt8](try Data(contentsOf: Self.bin))
        let eocd = bytes.count - 22
        #expect(bytes.u32(eocd) == 0x0605_4b50)
        bytes[eocd + 16] = 0xF0; bytes[eocd + 17] = 0xFF; bytes[eocd + 18] = 0xFF; bytes[eocd + 19] = 0x7F
        let error = try #require(throws: ModelError.self) { try TorchCheckpoint.parse(ArrayByteSource(bytes: bytes, path: "t"), path: "t") }
        #expect("\(error)".contains("does not fit"), "\(error)")
    }

    @Test func aCorruptPickleFailsItsChecksum() throws {
        var bytes = [UInt8](try Data(contentsOf: Self.bin))
        let found = Self.find([0x80, 0x02, 0x63], in: bytes)  // PROTO 2, GLOBAL: data.pkl's start
        let start = try #require(found)
        bytes[start + 40] ^= 0x01
        let error = try #require(throws: ModelError.self) { try TorchCheckpoint.parse(ArrayByteSource(bytes: bytes, path: "t"), path: "t") }
        #expect("\(error)".contains("CRC-32"), "\(error)")
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        return (0...(haystack.count - needle.count)).first { Array(haystack[$0..<($0 + needle.count)]) == needle }
    }

    /// Hand-made pickles: each is refused with the reason named.
    @Test(arguments: [
        ("truncated", PickleBuilder.stateDict([.init()]).dropLast(5).map { $0 }, "truncated"),
        ("deep nesting", [0x80, 2] + [0x29] + [UInt8](repeating: 0x85, count: 100) + [0x2E], "nests containers deeper"),
        ("unknown memo", [0x80, 2, 0x68, 7, 0x2E], "memo entry 7"),
        ("INST", [0x80, 2] + Array("iposix\nsystem\n".utf8) + [0x2E], "INST (0x69)"),
        ("stack underflow", [0x80, 2, 0x52, 0x2E], "empty stack"),
        ("not a dict", [0x80, 2, 0x4B, 1, 0x2E], "not a state dict"),
        ("BUILD on a plain dict", [0x80, 2, 0x7D, 0x7D, 0x62, 0x2E], "BUILD"),
        ("double storage", PickleBuilder.stateDict([.init(storageType: "DoubleStorage")]), "DoubleStorage"),
    ] as [(String, [UInt8], String)])
    func malformedPicklesAreRefused(_ name: String, _ pickle: [UInt8], _ reason: String) throws {
        let error = try #require(throws: ModelError.self) { try StateDictPickle(pickle, path: "t") }
        #expect("\(error)".contains(reason), "\(name): \(error)")
    }

    @Test func aHandMadeStateDictReads() throws {
        let pickle = PickleBuilder.stateDict([.init(name: "w", shape: [2, 3], strides: [3, 1]), .init(name: "v", key: "0", offset: 2, shape: [4], strides: [1])])
        let read = try StateDictPickle(pickle, path: "t")
        #expect(read.tensors.map(\.name) == ["w", "v"])
        #expect(read.tensors[1].tensor.offset == 2 && read.tensors[1].tensor.storage.elementCount == 6)
        let archive = PickleBuilder.archive(pickle: pickle, storages: ["0": [UInt8](repeating: 0, count: 24)])
        let parsed = try TorchCheckpoint.parse(ArrayByteSource(bytes: archive, path: "t"), path: "t")
        #expect(parsed.entries["v"]?.range.count == 16)
        #expect(parsed.entries["w"].map { $0.range.lowerBound + 8 } == parsed.entries["v"]?.range.lowerBound)
    }

    @Test(arguments: [
        ("transposed", PickleBuilder.Tensor(shape: [2, 3], strides: [1, 2]), [UInt8](repeating: 0, count: 24), "not a contiguous row-major view"),
        ("past its storage", PickleBuilder.Tensor(offset: 1, shape: [2, 3], strides: [3, 1]), [UInt8](repeating: 0, count: 24), "runs past its storage"),
        ("storage size", PickleBuilder.Tensor(), [UInt8](repeating: 0, count: 20), "is 20 bytes, not the 6 × 4"),
        ("missing storage", PickleBuilder.Tensor(key: "9"), [UInt8](repeating: 0, count: 24), "storage 9 is not in the archive"),
    ] as [(String, PickleBuilder.Tensor, [UInt8], String)])
    func badTensorsAreRefusedByName(_ name: String, _ tensor: PickleBuilder.Tensor, _ storage: [UInt8], _ reason: String) throws {
        let archive = PickleBuilder.archive(pickle: PickleBuilder.stateDict([tensor]), storages: ["0": storage])
        let error = try #require(throws: ModelError.self) { try TorchCheckpoint.parse(ArrayByteSource(bytes: archive, path: "t"), path: "t") }
        #expect("\(error)".contains(reason), "\(name): \(error)")
    }
}

/// Pickles and zip archives as `torch.save` writes them, built by hand for the tests (and the fuzz seeds).
enum PickleBuilder {
    struct Tensor {
        var name = "w"
        var storageType = "FloatStorage"
        var key = "0"
        var elements = 6
        var offset = 0
        var shape = [2, 3]
        var strides = [3, 1]
    }

    static func string(_ s: String) -> [UInt8] {
        let utf8 = Array(s.utf8)
        return [0x58] + withUnsafeBytes(of: UInt32(utf8.count).littleEndian, Array.init) + utf8
    }

    static func int(_ v: Int) -> [UInt8] { [0x4A] + withUnsafeBytes(of: Int32(v).littleEndian, Array.init) }
    static func global(_ module: String, _ name: String) -> [UInt8] { [0x63] + Array("\(module)\n\(name)\n".utf8) }
    static func tuple(_ items: [[UInt8]]) -> [UInt8] { [0x28] + items.flatMap { $0 } + [0x74] }

    static func stateDict(_ tensors: [Tensor]) -> [UInt8] {
        var out: [UInt8] = [0x80, 2] + global("collections", "OrderedDict") + [0x29, 0x52, 0x28]
        for t in tensors {
            out += string(t.name) + global("torch._utils", "_rebuild_tensor_v2")
            let pid = tuple([string("storage"), global("torch", t.storageType), string(t.key), string("cpu"), int(t.elements)]) + [0x51]
            let hooks = global("collections", "OrderedDict") + [0x29, 0x52]
            out += tuple([pid, int(t.offset), tuple(t.shape.map(int)), tuple(t.strides.map(int)), [0x89], hooks]) + [0x52]
        }
        return out + [0x75, 0x2E]
    }

    /// A zip of stored entries, `archive/…` as torch.save names them.
    static func archive(pickle: [UInt8], storages: [String: [UInt8]]) -> [UInt8] {
        var out: [UInt8] = [], central: [UInt8] = []
        func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
        let entries = [("archive/data.pkl", pickle)] + storages.sorted { $0.key < $1.key }.map { ("archive/data/\($0.key)", $0.value) }
            + [("archive/version", Array("3\n".utf8))]
        for (name, data) in entries {
            let offset = out.count
            let crc = CRC32.checksum(data)
            let common: [UInt8] = le(UInt16(0)) + le(UInt16(0)) + le(UInt16(0)) + le(UInt16(0)) + le(crc)
                + le(UInt32(data.count)) + le(UInt32(data.count)) + le(UInt16(name.utf8.count)) + le(UInt16(0))
            out += le(UInt32(0x0403_4b50)) + le(UInt16(20)) + common + Array(name.utf8) + data
            central += le(UInt32(0x0201_4b50)) + le(UInt16(20)) + le(UInt16(20)) + common
                + le(UInt16(0)) + le(UInt16(0)) + le(UInt16(0)) + le(UInt32(0)) + le(UInt32(offset)) + Array(name.utf8)
        }
        let cdOffset = out.count
        out += central
        out += le(UInt32(0x0605_4b50)) + le(UInt16(0)) + le(UInt16(0)) + le(UInt16(entries.count)) + le(UInt16(entries.count))
            + le(UInt32(central.count)) + le(UInt32(cdOffset)) + le(UInt16(0))
        return out
    }
}
