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

/// A memory-mapped `.safetensors` file with a fully validated header.
///
/// Layout: u64 little-endian header length N, N bytes of JSON (`{name: {dtype, shape, data_offsets}}`
/// plus an optional `__metadata__`), then the data section. The mapping lives as long as this object,
/// so float32 tensors are used in place without copying.
public final class SafeTensorsFile: @unchecked Sendable {
    // @unchecked: the mapping is read-only and never changes after init.
    public let url: URL
    public let entries: [String: SafeTensorsEntry]
    public let metadata: [String: String]
    /// The first 16 hex digits of the SHA-256 of the header (names, dtypes, shapes, offsets): what
    /// tells two checkpoints apart without reading their gigabytes.
    public let headerDigest: String
    private let base: UnsafeRawPointer
    private let mappedLength: Int
    private let dataStart: Int

    /// Upper bound for the JSON header; real BLIP headers are ~50 KB.
    public static let maxHeaderBytes = 100 << 20

    public init(url: URL) throws(ModelError) {
        self.url = url
        let fd = open(url.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw .unreadableFile(url.path, String(cString: strerror(errno)))
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .unreadableFile(url.path, String(cString: strerror(errno))) }
        let size = Int(st.st_size)
        guard size >= 8 else { throw .badSafeTensors(url.path, "file is \(size) bytes, shorter than the 8-byte header length") }
        guard let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), mapped != MAP_FAILED else {
            throw .unreadableFile(url.path, "mmap failed: \(String(cString: strerror(errno)))")
        }
        let raw = UnsafeRawPointer(mapped)
        do {
            let declared = UInt64(littleEndian: raw.loadUnaligned(as: UInt64.self))
            guard declared > 0, declared <= UInt64(min(Self.maxHeaderBytes, size - 8)) else {
                throw ModelError.badSafeTensors(url.path, "header length \(declared) is outside 1…\(min(Self.maxHeaderBytes, size - 8)) (truncated or not a safetensors file)")
            }
            let headerLength = Int(declared)
            let headerBytes = Data(bytes: raw + 8, count: headerLength)
            let parsed = try Self.parseHeader(headerBytes, dataLength: size - 8 - headerLength, path: url.path)
            self.entries = parsed.entries
            self.metadata = parsed.metadata
            self.headerDigest = SHA256.digest(UnsafeRawBufferPointer(start: raw, count: 8 + headerLength))
                .prefix(8).map { String(format: "%02x", $0) }.joined()
            self.dataStart = 8 + headerLength
        } catch let error as ModelError {
            munmap(mapped, size)
            throw error
        } catch {
            munmap(mapped, size)
            throw .badSafeTensors(url.path, "\(error)")
        }
        self.base = raw
        self.mappedLength = size
        // The weights are read in order during the first forward pass; ask for read-ahead.
        madvise(mapped, size, MADV_WILLNEED)
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: base), mappedLength) }

    /// Drops this process's mapping of the whole pages inside `bytes` (which must point into this
    /// file): they stop counting towards its memory and are read back from the page cache if
    /// touched again. For weights only ever read through a converted copy.
    func releasePages(_ bytes: UnsafeRawBufferPointer) {
        guard let start = bytes.baseAddress, start >= base, start + bytes.count <= base + mappedLength else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let first = (Int(bitPattern: start) + page - 1) / page * page
        let end = (Int(bitPattern: start) + bytes.count) / page * page
        guard end > first else { return }
        madvise(UnsafeMutableRawPointer(bitPattern: first), end - first, MADV_DONTNEED)
    }

    /// Raw bytes of one tensor, in the mapping.
    public func bytes(of entry: SafeTensorsEntry) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base + dataStart + entry.range.lowerBound, count: entry.range.count)
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
