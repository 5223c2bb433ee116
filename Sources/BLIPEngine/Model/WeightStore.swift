import Foundation

/// The checkpoint's tensors as float32, looked up by their Hugging Face names, from one
/// safetensors file or the shards of one (a tensor may be in one file only), or the same from a
/// `pytorch_model.bin` (``TorchCheckpoint``): the rest of the engine never sees the file format.
///
/// Float32 tensors point straight into the file's bytes, which `SafeTensorsFile` holds in memory
/// the process owns; F16/BF16 tensors are converted once into buffers this store owns. Every lookup checks the shape the config implies and records the
/// name, so `checkAllUsed()` can reject tensors the model does not know.
final class WeightStore: @unchecked Sendable {
    // @unchecked: filled during loading on one thread, read-only afterwards.
    let files: [SafeTensorsFile]
    /// Tensor name → its entry and the file holding it.
    private let located: [String: (entry: SafeTensorsEntry, file: SafeTensorsFile)]
    private var converted: [UnsafeMutablePointer<Float>] = []
    private var reduced: [UnsafeMutablePointer<BFloat16>] = []
    private var quantized: [UnsafeMutableRawPointer] = []
    private var used: Set<String> = []

    /// - Throws: `ModelError.badSafeTensors` when two files hold a tensor of the same name.
    init(files: [SafeTensorsFile]) throws(ModelError) {
        self.files = files
        var located: [String: (entry: SafeTensorsEntry, file: SafeTensorsFile)] = [:]
        for file in files {
            for (name, entry) in file.entries {
                if let other = located[name]?.file {
                    throw .badSafeTensors(file.url.path, "tensor \(name) is in \(other.url.lastPathComponent) too; the shards do not belong together")
                }
                located[name] = (entry, file)
            }
        }
        self.located = located
    }

    deinit {
        for p in converted { p.deallocate() }
        for p in reduced { p.deallocate() }
        for p in quantized { p.deallocate() }
    }

    func contains(_ name: String) -> Bool { located[name] != nil }

    /// Gives back the mapped pages of `bytes` (``SafeTensorsFile/releasePages(_:)``), in whichever
    /// file they lie.
    /// Nothing is given back when another tensor's bytes overlap `bytes`: a PyTorch checkpoint's
    /// tensors may share a storage (tied weights), and the other must stay readable.
    func releasePages(_ bytes: UnsafeRawBufferPointer) {
        guard let start = bytes.baseAddress else { return }
        var overlapping = 0
        for (entry, file) in located.values {
            let other = file.bytes(of: entry)
            if let s = other.baseAddress, s < start + bytes.count, start < s + other.count { overlapping += 1 }
        }
        guard overlapping <= 1 else { return }
        for file in files { file.releasePages(bytes) }
    }

    /// Gives back the float32 weight of `linear` (``releasePages(_:)``): a copy now answers every
    /// product of the layer.
    func releaseWeight(of linear: Linear) {
        releasePages(UnsafeRawBufferPointer(start: linear.weight, count: linear.outFeatures * linear.inFeatures * MemoryLayout<Float>.size))
    }

    /// The tensor `name`, which must have exactly `shape`.
    func tensor(_ name: String, shape: [Int]) throws(ModelError) -> UnsafePointer<Float> {
        guard let (entry, file) = located[name] else { throw .missingTensor(name) }
        // PyTorch stores some vectors with leading 1s (class_embedding (1,1,H)); compare without them.
        guard entry.shape.drop(while: { $0 == 1 }) == shape.drop(while: { $0 == 1 }) else {
            throw .shapeMismatch(tensor: name, expected: shape, found: entry.shape)
        }
        used.insert(name)
        let bytes = file.bytes(of: entry)
        let count = entry.elementCount
        switch entry.dtype {
        case .f32:
            if Int(bitPattern: bytes.baseAddress) % MemoryLayout<Float>.alignment == 0 {
                return bytes.baseAddress!.assumingMemoryBound(to: Float.self)
            }
            let out = allocate(count)
            memcpy(out, bytes.baseAddress!, count * 4)
            return UnsafePointer(out)
        case .bf16:
            let out = allocate(count)
            for i in 0..<count {
                let bits = UInt32(bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian) << 16
                out[i] = Float(bitPattern: bits)
            }
            return UnsafePointer(out)
        case .f16:
            let out = allocate(count)
            for i in 0..<count {
                out[i] = Float(Float16(bitPattern: bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian))
            }
            return UnsafePointer(out)
        case .u8, .i32, .i64:
            throw .badSafeTensors(file.url.path, "tensor \(name) has integer dtype \(entry.dtype.rawValue); weights must be F32, F16 or BF16")
        }
    }

    /// - Parameter steps: `.bfloat16` or `.int8` adds a copy of the weight in that format, owned by
    ///   this store, for decode steps to read instead.
    func linear(_ prefix: String, in inFeatures: Int, out outFeatures: Int,
                steps: PrecisionPlan.StepWeightKind = .float32) throws(ModelError) -> Linear {
        var linear = Linear(weight: try tensor(prefix + ".weight", shape: [outFeatures, inFeatures]),
                            bias: try tensor(prefix + ".bias", shape: [outFeatures]),
                            inFeatures: inFeatures, outFeatures: outFeatures)
        stepCopy(of: &linear, steps)
        return linear
    }

    /// Gives `linear` the copy of its weight that `steps` asks for, which every product of the
    /// layer then reads. With `releasing`, the float32 weight's mapped pages are given back
    /// (``releasePages(_:)``), so the copy replaces them in memory; pass false for a weight that is
    /// read elsewhere too (the tied word embeddings of the LM head).
    func stepCopy(of linear: inout Linear, _ steps: PrecisionPlan.StepWeightKind, releasing: Bool = true) {
        let n = linear.outFeatures, k = linear.inFeatures
        switch steps {
        case .float32: return
        case .bfloat16: linear.reducedWeight = packedBFloat16(linear.weight, outFeatures: n, inFeatures: k)
        case .int8: linear.int8Weight = packedInt8(linear.weight, outFeatures: n, inFeatures: k)
        }
        if releasing && (linear.reducedWeight != nil || linear.int8Weight != nil) { releaseWeight(of: linear) }
    }

    /// An int8 copy of `weight` (n, k) quantised per row (``PackedInt8Matrix``), owned by this store.
    func packedInt8(_ weight: UnsafePointer<Float>, outFeatures n: Int, inFeatures k: Int) -> PackedInt8Matrix {
        let count = PackedInt8Matrix.count(outFeatures: n, inFeatures: k)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: count + n * MemoryLayout<Float>.stride, alignment: 64)
        quantized.append(raw)
        let values = raw.bindMemory(to: Int8.self, capacity: count)
        let scales = (raw + count).bindMemory(to: Float.self, capacity: n)
        PackedInt8Matrix.pack(weight, outFeatures: n, inFeatures: k, into: values, scales: scales)
        return PackedInt8Matrix(values: UnsafePointer(values), scales: UnsafePointer(scales), outFeatures: n, inFeatures: k)
    }

    /// A packed bfloat16 copy (round to nearest even) of `weight` (n, k), owned by this store, or nil
    /// when the shape cannot be packed.
    func packedBFloat16(_ weight: UnsafePointer<Float>, outFeatures n: Int, inFeatures k: Int) -> PackedBFloat16Matrix? {
        guard PackedBFloat16Matrix.canPack(outFeatures: n, inFeatures: k) else { return nil }
        let out = UnsafeMutablePointer<BFloat16>.allocate(capacity: n * k)
        PackedBFloat16Matrix.pack(weight, outFeatures: n, inFeatures: k, into: out)
        reduced.append(out)
        return PackedBFloat16Matrix(values: UnsafePointer(out), outFeatures: n, inFeatures: k)
    }

    func layerNorm(_ prefix: String, width: Int, eps: Float) throws(ModelError) -> LayerNorm {
        LayerNorm(weight: try tensor(prefix + ".weight", shape: [width]),
                  bias: try tensor(prefix + ".bias", shape: [width]), width: width, eps: eps)
    }

    /// Fails on the first tensor no lookup asked for. Buffers transformers never loads
    /// (`position_ids`, saved by old checkpoints) are ignored.
    func checkAllUsed() throws(ModelError) {
        for name in located.keys.sorted() where !used.contains(name) && !name.hasSuffix("position_ids") {
            throw .unexpectedTensor(name)
        }
    }

    private func allocate(_ count: Int) -> UnsafeMutablePointer<Float> {
        let p = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
        converted.append(p)
        return p
    }
}
