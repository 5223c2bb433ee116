import Foundation

/// `pytorch_model.bin` as `torch.save` writes it since PyTorch 1.6: a zip archive of stored
/// entries — `PREFIX/data.pkl`, the state dict pickled, and `PREFIX/data/KEY`, one per storage,
/// each storage's raw little-endian elements (64-byte aligned by torch ≥ 2.x). The pickle is read by
/// ``StateDictPickle`` (nothing in it executed); each tensor becomes a byte range of the file, so
/// the weights are used in place exactly as a safetensors file's are.
///
/// Refused with an error that says what to do: PyTorch's legacy format (pre-1.6, storages inside
/// the pickle stream), HDF5 (`tf_model.h5`), compressed entries, and tensors that are not
/// contiguous row-major views of their storage.
enum TorchCheckpoint {
    /// Upper bound for data.pkl; BLIP-large's is ~60 KB.
    static let maxPickleBytes = 64 << 20

    /// What a legacy (pre-1.6) `torch.save` file starts with: PROTO 2, then LONG1 of the magic
    /// number 0x1950a86a20f9469cfc6c.
    static let legacyMagic: [UInt8] = [0x80, 0x02, 0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19]
    static let hdf5Magic: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]

    struct Parsed {
        var entries: [String: SafeTensorsEntry]
        /// The first 16 hex digits of the SHA-256 of data.pkl: names, shapes and storage keys.
        var digest: String
    }

    /// Reads the archive's directory and pickle; every tensor's range is checked to lie inside its
    /// storage's entry.
    /// - Throws: `ModelError.convertCheckpoint` (legacy torch, HDF5), `.unsafeCheckpoint` (a pickle
    ///   that asks for more than a state dict), `.badCheckpoint` (anything malformed or out of bounds).
    static func parse(_ source: some ByteSource, path: String) throws(ModelError) -> Parsed {
        let head = try source.read(0..<min(source.count, 16))
        if head.starts(with: legacyMagic) {
            throw .convertCheckpoint(path, "it is in PyTorch's legacy format (torch.save before PyTorch 1.6, or with _use_new_zipfile_serialization=False), whose tensors are inside its pickle stream")
        }
        if head.starts(with: hdf5Magic) {
            throw .convertCheckpoint(path, "it is an HDF5 file (TensorFlow/Keras weights), not a PyTorch checkpoint")
        }
        guard head.starts(with: [0x50, 0x4B, 0x03, 0x04]) else {
            let kind = head.first == 0x80 ? "a bare pickle, not PyTorch's zip format" : "not a PyTorch zip archive (it starts with \(head.prefix(4).map { String(format: "%02x", $0) }.joined()))"
            throw .badCheckpoint(path, "it is \(kind)")
        }
        let archive = try ZipArchive(source, path: path)
        // torch.save names every entry ARCHIVE/…, ARCHIVE being the file's stem ("archive" for a buffer).
        let pickles = archive.entries.keys.filter { $0.hasSuffix("/data.pkl") && $0.split(separator: "/", omittingEmptySubsequences: false).count == 2 }
        guard pickles.count == 1, let pickleName = pickles.first else {
            throw .badCheckpoint(path, pickles.isEmpty ? "the archive has no ARCHIVE/data.pkl: it is a zip file but not a torch.save checkpoint" : "the archive has \(pickles.count) data.pkl entries")
        }
        let prefix = String(pickleName.dropLast("data.pkl".count))
        if let order = archive.entries[prefix + "byteorder"] {
            let value = try archive.read(order, from: source)
            guard value == Array("little".utf8) else { throw .badCheckpoint(path, "its tensors are stored \(String(decoding: value.prefix(16), as: UTF8.self).safeForMessage)-endian; only little-endian is read") }
        }
        let pickleEntry = archive.entries[pickleName]!
        guard pickleEntry.size <= maxPickleBytes else { throw .badCheckpoint(path, "data.pkl is \(pickleEntry.size) bytes, more than \(maxPickleBytes)") }
        let pickle = try archive.read(pickleEntry, from: source)
        let stateDict = try StateDictPickle(pickle, path: path)

        var storages: [String: (storage: StateDictPickle.Storage, range: Range<Int>)] = [:]
        var entries: [String: SafeTensorsEntry] = [:]
        for (name, tensor) in stateDict.tensors {
            let storage = tensor.storage
            let elementSize = storage.type.dtype.byteSize
            let range: Range<Int>
            if let known = storages[storage.key] {
                guard known.storage == storage else {
                    throw .badCheckpoint(path, "tensor \(name.safeForMessage) reads storage \(storage.key) as \(storage.type.rawValue) of \(storage.elementCount) elements, another tensor as \(known.storage.type.rawValue) of \(known.storage.elementCount)")
                }
                range = known.range
            } else {
                guard let entry = archive.entries[prefix + "data/" + storage.key] else {
                    throw .badCheckpoint(path, "tensor \(name.safeForMessage)'s storage \(storage.key) is not in the archive")
                }
                let (bytes, overflow) = storage.elementCount.multipliedReportingOverflow(by: elementSize)
                guard !overflow, entry.size == bytes else {
                    throw .badCheckpoint(path, "storage \(storage.key) of tensor \(name.safeForMessage) is \(entry.size) bytes, not the \(storage.elementCount) × \(elementSize) its pickle says")
                }
                range = try archive.dataRange(of: entry, in: source)
                storages[storage.key] = (storage, range)
            }
            // The view: row-major and contiguous (dimensions of size 1 may have any stride, as an
            // expand()ed position_ids buffer has), inside its storage.
            var count = 1
            var expected = 1
            for (size, stride) in zip(tensor.shape, tensor.strides).reversed() {
                guard size >= 0, size <= 1 << 40 else { throw .badCheckpoint(path, "tensor \(name.safeForMessage) has shape \(tensor.shape)") }
                guard size == 1 || stride == expected else {
                    throw .badCheckpoint(path, "tensor \(name.safeForMessage) (shape \(tensor.shape), strides \(tensor.strides)) is not a contiguous row-major view of its storage; save the state dict after .contiguous(), or convert the checkpoint to safetensors")
                }
                let (product, overflow) = count.multipliedReportingOverflow(by: size)
                guard !overflow, product <= 1 << 40 else { throw .badCheckpoint(path, "tensor \(name.safeForMessage) has shape \(tensor.shape)") }
                count = product
                expected = product
            }
            guard tensor.offset >= 0, tensor.offset <= storage.elementCount, count <= storage.elementCount - tensor.offset else {
                throw .badCheckpoint(path, "tensor \(name.safeForMessage) (\(count) elements from element \(tensor.offset)) runs past its storage of \(storage.elementCount)")
            }
            let start = range.lowerBound + tensor.offset * elementSize
            entries[name] = SafeTensorsEntry(name: name, dtype: storage.type.dtype, shape: tensor.shape,
                                             range: start..<(start + count * elementSize))
        }
        return Parsed(entries: entries, digest: SafeTensorsFile.digest(pickle))
    }
}
