import CMemory
import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Element types a safetensors file may hold. Only the float types are model weights; the integer
/// types are accepted so the same reader serves test fixtures.
public enum SafeTensorsDType: String, Sendable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16", u8 = "U8", i32 = "I32", i64 = "I64"

    var byteSize: Int {
        switch self {
        case .f32, .i32: 4
        case .f16, .bf16: 2
        case .u8: 1
        case .i64: 8
        }
    }
}

/// One tensor's entry in the header: where its bytes are inside the data section.
public struct SafeTensorsEntry: Sendable, Equatable {
    public var name: String
    public var dtype: SafeTensorsDType
    public var shape: [Int]
    /// Byte range relative to the start of the data section.
    public var range: Range<Int>

    public var elementCount: Int { shape.reduce(1, *) }
}

/// A `.safetensors` file with a fully validated header, its tensors used in place. A `torch.save`
/// checkpoint (`pytorch_model.bin`, ``init(pytorchCheckpoint:)``) is held the same way: its
/// tensors are byte ranges of the file too (``TorchCheckpoint``).
///
/// Layout: u64 little-endian header length N, N bytes of JSON (`{name: {dtype, shape, data_offsets}}`
/// plus an optional `__metadata__`), then the data section.
///
/// The file is first mapped (private, read-only): loading is as fast as the page cache. A mapped
/// file that is truncated or rewritten in place (`cp` over it) would kill the process with SIGBUS
/// on the next access, or silently change its weights, so ``takeOwnership()`` then copies the
/// mapping into anonymous memory piece by piece and moves each copy onto the mapping's own
/// addresses (`mremap`): the tensors' pointers stay valid and readers never see a hole, and from
/// then on whatever happens to the file cannot touch the loaded weights. A file that changed while
/// it was copied is reported (the copy may mix old and new bytes).
public final class SafeTensorsFile: @unchecked Sendable {
    // @unchecked: the bytes never change after init (the copy is of identical bytes); `state`
    // is guarded by `lock`.
    public let url: URL
    public let entries: [String: SafeTensorsEntry]
    public let metadata: [String: String]
    /// The first 16 hex digits of the SHA-256 of the header (names, dtypes, shapes, offsets): what
    /// tells two checkpoints apart without reading their gigabytes.
    public let headerDigest: String
    /// What the file was when it was read: device, inode, size and modification time.
    public let fileStamp: FileStamp
    /// The whole file's mapping (page-aligned), then the same addresses in owned memory.
    private let mapping: UnsafeMutableRawPointer
    private let mappingLength: Int
    /// Where the data section starts in `mapping`.
    private let dataOffset: Int
    private let lock = NSLock()
    /// The open file while its pages are still mapped; `nil` once the memory is owned.
    private var openFile: Int32?

    /// Upper bound for the JSON header; real BLIP headers are ~50 KB.
    public static let maxHeaderBytes = 100 << 20

    /// The first 8 bytes of the SHA-256 of `bytes`, in hex: how a header (or headers) names a checkpoint.
    public static func digest(_ bytes: some DataProtocol) -> String {
        SHA256.hash(data: bytes).prefix(8).map { String(format: "%02x", $0) }.joined()
    }
    /// Bytes read per `pread` (the header).
    static let readChunk = 64 << 20
    /// Bytes copied into owned memory per step of ``takeOwnership()``: what peak memory grows by.
    static let copyChunk = 64 << 20

    /// A file's identity and version as `fstat` reports them.
    public struct FileStamp: Sendable, Equatable, CustomStringConvertible {
        public var device: UInt64
        public var inode: UInt64
        public var size: Int
        public var modifiedNanoseconds: Int64

        init(_ st: stat) {
            device = UInt64(st.st_dev)
            inode = UInt64(st.st_ino)
            size = Int(st.st_size)
            modifiedNanoseconds = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
        }

        /// The stamp of the file now at `path` (following symlinks), or nil when it cannot be read.
        public static func current(path: String) -> FileStamp? {
            var st = stat()
            return stat(path, &st) == 0 ? FileStamp(st) : nil
        }

        public var description: String { "inode \(inode), \(size) bytes, mtime \(modifiedNanoseconds / 1_000_000_000)" }
    }

    /// What a format's reader finds in a file before it is mapped.
    struct Parsed {
        var entries: [String: SafeTensorsEntry]
        var metadata: [String: String] = [:]
        var headerDigest: String
        /// Where the entries' ranges start in the file.
        var dataOffset: Int
    }

    /// Opens and checks a `.safetensors` file.
    public convenience init(url: URL) throws(ModelError) {
        try self.init(url: url) { (file: FileByteSource) throws(ModelError) -> Parsed in try Self.parseSafeTensors(file) }
    }

    /// Opens and checks a `torch.save` zip checkpoint (`pytorch_model.bin`, ``TorchCheckpoint``):
    /// its tensors are used in place like a safetensors file's.
    public convenience init(pytorchCheckpoint url: URL) throws(ModelError) {
        try self.init(url: url) { (file: FileByteSource) throws(ModelError) -> Parsed in
            let parsed = try TorchCheckpoint.parse(file, path: file.path)
            return Parsed(entries: parsed.entries, headerDigest: parsed.digest, dataOffset: 0)
        }
    }

    /// Opens the file, lets `parse` read what it needs with `pread`, then maps it.
    init(url: URL, parse: (FileByteSource) throws(ModelError) -> Parsed) throws(ModelError) {
        self.url = url
        let path = url.path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw .unreadableFile(path, String(cString: strerror(errno)))
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .unreadableFile(path, String(cString: strerror(errno))) }
        let stamp = FileStamp(st)
        let size = stamp.size
        let parsed = try parse(FileByteSource(fd: fd, count: size, path: path))
        entries = parsed.entries
        metadata = parsed.metadata
        headerDigest = parsed.headerDigest

        guard size > 0 else { throw .badSafeTensors(path, "the file is empty") }
        guard let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), mapped != MAP_FAILED else {
            throw .unreadableFile(path, "cannot map \(size) bytes: \(String(cString: strerror(errno)))")
        }
        mapping = mapped
        mappingLength = size
        dataOffset = parsed.dataOffset
        fileStamp = stamp
        openFile = dup(fd)
    }

    /// The safetensors header: u64 length, JSON; the data section follows.
    static func parseSafeTensors(_ file: FileByteSource) throws(ModelError) -> Parsed {
        let (fd, size, path) = (file.fd, file.count, file.path)
        guard size >= 8 else { throw .badSafeTensors(path, "file is \(size) bytes, shorter than the 8-byte header length") }

        let lengthBytes = UnsafeMutableRawBufferPointer.allocate(byteCount: 8, alignment: 8)
        defer { lengthBytes.deallocate() }
        try Self.readFully(fd, into: lengthBytes, at: 0, path: path)
        let declared = UInt64(littleEndian: lengthBytes.loadUnaligned(as: UInt64.self))
        guard declared > 0, declared <= UInt64(min(Self.maxHeaderBytes, size - 8)) else {
            throw .badSafeTensors(path, "header length \(declared) is outside 1…\(min(Self.maxHeaderBytes, size - 8)) (truncated or not a safetensors file)")
        }
        let headerLength = Int(declared)
        let header = UnsafeMutableRawBufferPointer.allocate(byteCount: 8 + headerLength, alignment: 8)
        defer { header.deallocate() }
        try Self.readFully(fd, into: header, at: 0, path: path)
        let parsed = try Self.parseHeader(Data(UnsafeRawBufferPointer(rebasing: header[8...])), dataLength: size - 8 - headerLength, path: path)
        return Parsed(entries: parsed.entries, metadata: parsed.metadata,
                      headerDigest: Self.digest(UnsafeRawBufferPointer(header)), dataOffset: 8 + headerLength)
    }

    deinit {
        munmap(mapping, mappingLength)
        if let openFile { close(openFile) }
    }

    /// Page ranges (offsets in the mapping) given back with ``releasePages(_:)``: never read again,
    /// so ``takeOwnership()`` does not copy them.
    private var released: [Range<Int>] = []

    /// Gives back the whole pages inside `bytes` (a tensor whose values now live elsewhere, e.g.
    /// packed): they stop counting towards the process's memory and are never copied. Reading
    /// them afterwards gives the file's bytes while the file is mapped, zeros once it is owned.
    func releasePages(_ bytes: UnsafeRawBufferPointer) {
        guard let start = bytes.baseAddress, start >= UnsafeRawPointer(mapping),
              start + bytes.count <= UnsafeRawPointer(mapping) + mappingLength else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let offset = start - UnsafeRawPointer(mapping)
        let first = (offset + page - 1) / page * page, end = (offset + bytes.count) / page * page
        guard end > first else { return }
        lock.withLock { released.append(first..<end) }
        madvise(mapping + first, end - first, MADV_DONTNEED)
    }

    /// Bytes given back with ``releasePages(_:)`` (whole pages): never resident again, never copied.
    public var releasedBytes: Int { lock.withLock { released.reduce(0) { $0 + $1.count } } }

    /// Whether ``takeOwnership()`` has finished: the weights no longer depend on the file.
    public var isOwned: Bool { lock.withLock { openFile == nil } }

    /// Copies the mapped file into anonymous memory this process owns, `copyChunk` bytes at a time,
    /// each piece moved onto its own addresses, so peak memory grows by one piece. Safe while other
    /// threads read the tensors. Idempotent.
    ///
    /// Until it returns, the weights are the file's pages: a truncation of the file in that window
    /// raises SIGBUS (the daemon turns it into a clean exit with a log line).
    /// - Returns: The bytes copied (0 when already owned): the file's but the released pages.
    /// - Throws: `ModelError.badSafeTensors` when the file changed while it was copied (the copy may
    ///   mix old and new bytes: load it again), or when memory runs out (the mapping stays).
    public func takeOwnership() throws(ModelError) -> Int {
        lock.lock()
        defer { lock.unlock() }
        guard let fd = openFile else { return 0 }
        let path = url.path
        var offset = 0, copied = mappingLength
        let skips = released.sorted { $0.lowerBound < $1.lowerBound }
        while offset < mappingLength {
            let count = min(Self.copyChunk, mappingLength - offset)
            guard let piece = mmap(nil, count, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), piece != MAP_FAILED else {
                throw .unreadableFile(path, "cannot allocate \(count) bytes to copy the weights into: \(String(cString: strerror(errno))); still serving them from the mapped file")
            }
            // Huge pages: first-touching gigabytes in 4 KiB pages costs seconds in a VM.
            madvise(piece, count, MADV_HUGEPAGE)
            // The piece's bytes but the released ranges (left as untouched zero pages).
            func copy(_ range: Range<Int>) {
                (piece + (range.lowerBound - offset)).copyMemory(from: mapping + range.lowerBound, byteCount: range.count)
            }
            var cursor = offset
            let end = offset + count
            var skipped: [Range<Int>] = []
            for skip in skips where skip.upperBound > cursor && skip.lowerBound < end {
                if skip.lowerBound > cursor { copy(cursor..<skip.lowerBound) }
                let lower = max(cursor, skip.lowerBound)
                cursor = max(cursor, min(skip.upperBound, end))
                if cursor > lower { skipped.append(lower..<cursor) }
            }
            if cursor < end { copy(cursor..<end) }
            // A huge page the copy touched next to a released range holds zeros there: give those
            // back too (the kernel splits the huge page), so released bytes stay out of memory.
            for range in skipped {
                madvise(piece + (range.lowerBound - offset), range.count, MADV_DONTNEED)
                copied -= range.count
            }
            mprotect(piece, count, PROT_READ)
            guard blip_mremap_onto(piece, count, mapping + offset) == mapping + offset else {
                let code = errno
                munmap(piece, count)
                throw .unreadableFile(path, "cannot move the copied weights into place: \(String(cString: strerror(code))); still serving them from the mapped file")
            }
            offset += count
        }
        var after = stat()
        let unchanged = fstat(fd, &after) == 0 && FileStamp(after) == fileStamp
        close(fd)
        openFile = nil
        guard unchanged else {
            throw .badSafeTensors(path, "the file changed while its weights were being copied (was \(fileStamp), now \(FileStamp(after))): the loaded weights may mix both versions; replace a model by renaming a complete copy into place (docs/daemon.md)")
        }
        return copied
    }

    /// Reads exactly `buffer.count` bytes at `offset`; a file that ends early was truncated.
    private static func readFully(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int, path: String) throws(ModelError) {
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, min(readChunk, buffer.count - done), off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw .unreadableFile(path, "read failed at byte \(offset + done): \(String(cString: strerror(errno)))")
            }
            guard n > 0 else {
                throw .badSafeTensors(path, "the file ended at byte \(offset + done), before the \(offset + buffer.count) its header promises: it is truncated, or changed while it was being read (replace a model by renaming a complete copy into place; docs/daemon.md)")
            }
            done += n
        }
    }

    /// Raw bytes of one tensor.
    public func bytes(of entry: SafeTensorsEntry) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: mapping + dataOffset + entry.range.lowerBound, count: entry.range.count)
    }

    static func parseHeader(_ data: Data, dataLength: Int, path: String) throws(ModelError)
        -> (entries: [String: SafeTensorsEntry], metadata: [String: String])
    {
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data) } catch {
            throw .badSafeTensors(path, "header is not valid JSON (\(error.localizedDescription))")
        }
        guard let dict = object as? [String: Any] else {
            throw .badSafeTensors(path, "header is not a JSON object")
        }
        var entries: [String: SafeTensorsEntry] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in dict {
            if name == "__metadata__" {
                if let m = value as? [String: Any] {
                    for (k, v) in m { metadata[k] = "\(v)" }
                }
                continue
            }
            guard let info = value as? [String: Any],
                  let dtypeName = info["dtype"] as? String,
                  let shapeAny = info["shape"] as? [Any],
                  let offsetsAny = info["data_offsets"] as? [Any], offsetsAny.count == 2
            else { throw .badSafeTensors(path, "tensor \(name): entry needs dtype, shape and two data_offsets") }
            guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
                throw .badSafeTensors(path, "tensor \(name): dtype \(dtypeName) is not supported (use F32, F16 or BF16)")
            }
            var shape: [Int] = []
            var count = 1
            for dimAny in shapeAny {
                guard let dim = (dimAny as? NSNumber)?.intValue, dim >= 0, dim <= 1 << 40 else {
                    throw .badSafeTensors(path, "tensor \(name): shape \(shapeAny) has an invalid dimension")
                }
                shape.append(dim)
                let (product, overflow) = count.multipliedReportingOverflow(by: dim)
                guard !overflow, product <= 1 << 40 else { throw .badSafeTensors(path, "tensor \(name): shape \(shape) is too large") }
                count = product
            }
            guard let begin = (offsetsAny[0] as? NSNumber)?.intValue, let end = (offsetsAny[1] as? NSNumber)?.intValue,
                  begin >= 0, end >= begin, end <= dataLength
            else {
                throw .badSafeTensors(path, "tensor \(name): data_offsets \(offsetsAny) fall outside the \(dataLength)-byte data section (truncated file?)")
            }
            guard end - begin == count * dtype.byteSize else {
                throw .badSafeTensors(path, "tensor \(name): \(end - begin) bytes do not hold shape \(shape) of \(dtypeName)")
            }
            entries[name] = SafeTensorsEntry(name: name, dtype: dtype, shape: shape, range: begin..<end)
        }
        // Tensors must not overlap: sort by start and check neighbours.
        let sorted = entries.values.filter { !$0.range.isEmpty }.sorted { $0.range.lowerBound < $1.range.lowerBound }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.range.upperBound > b.range.lowerBound {
            throw .badSafeTensors(path, "tensors \(a.name) and \(b.name) overlap")
        }
        return (entries, metadata)
    }
}
