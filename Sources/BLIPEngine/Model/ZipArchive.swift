#if canImport(Glibc)
import Glibc
#endif

/// Bytes read by offset: a file (`pread`) or an array (tests, fuzzing). Every read is
/// bounds-checked by the caller and again here.
protocol ByteSource {
    var count: Int { get }
    /// Exactly the bytes of `range`, which must lie inside `0..<count`.
    func read(_ range: Range<Int>) throws(ModelError) -> [UInt8]
}

struct ArrayByteSource: ByteSource {
    let bytes: [UInt8]
    let path: String
    var count: Int { bytes.count }
    func read(_ range: Range<Int>) throws(ModelError) -> [UInt8] {
        guard range.lowerBound >= 0, range.upperBound <= bytes.count else {
            throw .badCheckpoint(path, "needs bytes \(range) of \(bytes.count)")
        }
        return Array(bytes[range])
    }
}

struct FileByteSource: ByteSource {
    let fd: Int32
    let count: Int
    let path: String
    func read(_ range: Range<Int>) throws(ModelError) -> [UInt8] {
        guard range.lowerBound >= 0, range.upperBound <= count else {
            throw .badCheckpoint(path, "needs bytes \(range) of a \(count)-byte file (truncated?)")
        }
        var out = [UInt8](repeating: 0, count: range.count)
        var done = 0
        while done < out.count {
            let n = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, $0.count - done, off_t(range.lowerBound + done)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .unreadableFile(path, "read failed at byte \(range.lowerBound + done): \(String(cString: strerror(errno)))")
            }
            guard n > 0 else { throw .badCheckpoint(path, "the file ended at byte \(range.lowerBound + done) (truncated, or changed while it was read)") }
            done += n
        }
        return out
    }
}

/// The central directory of a zip archive as `torch.save` writes it (PyTorch's "zip format"): only
/// *stored* entries can be used in place, so an entry compressed by other tools is refused by name
/// when it is read. ZIP64 records (archives over 4 GiB, or over 65,535 entries) are understood.
/// Every offset and size is checked against the file; nothing is trusted.
struct ZipArchive {
    struct Entry: Equatable {
        var name: String
        var method: UInt16
        var flags: UInt16
        var crc32: UInt32
        var compressedSize: Int
        var size: Int
        var localHeaderOffset: Int
    }

    let path: String
    /// Entries by name (a name given twice is refused).
    let entries: [String: Entry]
    /// Where the central directory starts: no entry's data may reach into it.
    let centralDirectoryOffset: Int

    static let maxEntries = 1 << 20
    static let maxCentralDirectoryBytes = 256 << 20

    /// Reads and checks the end-of-central-directory record and the central directory.
    /// - Throws: `ModelError.badCheckpoint` for anything out of bounds or malformed.
    init(_ source: some ByteSource, path: String) throws(ModelError) {
        self.path = path
        let size = source.count
        guard size >= 22 else { throw .badCheckpoint(path, "\(size) bytes is too short for a zip archive") }
        // The end record is the last 22 bytes plus a comment of up to 65,535 bytes.
        let tailStart = max(0, size - 22 - 0xFFFF)
        let tail = try source.read(tailStart..<size)
        var eocd: Int?
        var i = tail.count - 22
        while i >= 0 {
            if tail.u32(i) == 0x0605_4b50, i + 22 + Int(tail.u16(i + 20)) == tail.count { eocd = i; break }
            i -= 1
        }
        guard let e = eocd else { throw .badCheckpoint(path, "no zip end-of-central-directory record (truncated?)") }
        var count = Int(tail.u16(e + 10))
        var cdSize = Int(tail.u32(e + 12))
        var cdOffset = Int(tail.u32(e + 16))
        guard tail.u16(e + 4) == 0 || tail.u16(e + 4) == 0xFFFF, tail.u16(e + 6) == 0 || tail.u16(e + 6) == 0xFFFF else {
            throw .badCheckpoint(path, "a zip archive split over several files is not supported")
        }
        var endOfDirectory = tailStart + e
        if count == 0xFFFF || cdSize == 0xFFFF_FFFF || cdOffset == 0xFFFF_FFFF {
            // ZIP64: a locator just before the end record points at the 64-bit end record.
            let locator = tailStart + e - 20
            guard locator >= 56 else { throw .badCheckpoint(path, "ZIP64 locator is missing") }
            let loc = try source.read(locator..<(locator + 20))
            guard loc.u32(0) == 0x0706_4b50 else { throw .badCheckpoint(path, "ZIP64 locator is missing") }
            let recordOffset = loc.u64(8)
            guard recordOffset <= UInt64(locator - 56) else { throw .badCheckpoint(path, "ZIP64 end record offset \(recordOffset) is out of range") }
            let record = try source.read(Int(recordOffset)..<(Int(recordOffset) + 56))
            guard record.u32(0) == 0x0606_4b50 else { throw .badCheckpoint(path, "ZIP64 end record is missing") }
            guard record.u64(32) <= UInt64(Self.maxEntries), record.u64(40) <= UInt64(Int.max), record.u64(48) <= UInt64(Int.max) else {
                throw .badCheckpoint(path, "ZIP64 end record gives impossible sizes")
            }
            count = Int(record.u64(32))
            cdSize = Int(record.u64(40))
            cdOffset = Int(record.u64(48))
            endOfDirectory = Int(recordOffset)
        }
        guard cdSize <= Self.maxCentralDirectoryBytes, count <= Self.maxEntries, cdOffset >= 0,
              cdOffset <= endOfDirectory, cdSize <= endOfDirectory - cdOffset else {
            throw .badCheckpoint(path, "central directory (\(cdSize) bytes at \(cdOffset), \(count) entries) does not fit the \(size)-byte file")
        }
        guard count * 46 <= cdSize else { throw .badCheckpoint(path, "central directory of \(cdSize) bytes cannot hold \(count) entries") }
        let cd = try source.read(cdOffset..<(cdOffset + cdSize))
        var entries: [String: Entry] = [:]
        var at = 0
        for _ in 0..<count {
            guard at + 46 <= cd.count, cd.u32(at) == 0x0201_4b50 else {
                throw .badCheckpoint(path, "central directory entry \(entries.count) is malformed")
            }
            let nameLength = Int(cd.u16(at + 28)), extraLength = Int(cd.u16(at + 30)), commentLength = Int(cd.u16(at + 32))
            let end = at + 46 + nameLength + extraLength + commentLength
            guard end <= cd.count else { throw .badCheckpoint(path, "central directory entry \(entries.count) runs past the directory") }
            guard let name = String(validating: cd[(at + 46)..<(at + 46 + nameLength)], as: UTF8.self) else {
                throw .badCheckpoint(path, "an entry name is not UTF-8")
            }
            var entry = Entry(name: name, method: cd.u16(at + 10), flags: cd.u16(at + 8), crc32: cd.u32(at + 16),
                              compressedSize: Int(cd.u32(at + 20)), size: Int(cd.u32(at + 24)),
                              localHeaderOffset: Int(cd.u32(at + 42)))
            // ZIP64 extra field: the 64-bit values of the fields saturated above, in this order.
            var x = at + 46 + nameLength
            let extraEnd = x + extraLength
            while x + 4 <= extraEnd {
                let id = cd.u16(x), length = Int(cd.u16(x + 2))
                guard x + 4 + length <= extraEnd else { throw .badCheckpoint(path, "entry \(name.safeForMessage): extra field runs past its end") }
                if id == 0x0001 {
                    var f = x + 4
                    func next() throws(ModelError) -> Int {
                        guard f + 8 <= x + 4 + length, cd.u64(f) <= UInt64(Int.max) else {
                            throw .badCheckpoint(path, "entry \(name.safeForMessage): ZIP64 field is malformed")
                        }
                        defer { f += 8 }
                        return Int(cd.u64(f))
                    }
                    if entry.size == 0xFFFF_FFFF { entry.size = try next() }
                    if entry.compressedSize == 0xFFFF_FFFF { entry.compressedSize = try next() }
                    if entry.localHeaderOffset == 0xFFFF_FFFF { entry.localHeaderOffset = try next() }
                }
                x += 4 + length
            }
            guard entries[name] == nil else { throw .badCheckpoint(path, "entry \(name.safeForMessage) appears twice") }
            guard entry.localHeaderOffset < cdOffset, entry.compressedSize <= cdOffset - entry.localHeaderOffset else {
                throw .badCheckpoint(path, "entry \(name.safeForMessage) (\(entry.compressedSize) bytes at \(entry.localHeaderOffset)) lies outside the archive's data")
            }
            entries[name] = entry
            at = end
        }
        self.entries = entries
        centralDirectoryOffset = cdOffset
    }

    /// Where `entry`'s bytes start, from its local header; the entry must be stored (not compressed)
    /// and must end before the central directory.
    func dataRange(of entry: Entry, in source: some ByteSource) throws(ModelError) -> Range<Int> {
        guard entry.flags & 1 == 0 else { throw .badCheckpoint(path, "entry \(entry.name.safeForMessage) is encrypted") }
        guard entry.method == 0 else {
            let method = entry.method == 8 ? "deflate" : "method \(entry.method)"
            throw .badCheckpoint(path, "entry \(entry.name.safeForMessage) is compressed (\(method)); torch.save writes stored entries, which are used in place: save it again with torch.save, or convert it to safetensors")
        }
        guard entry.compressedSize == entry.size else {
            throw .badCheckpoint(path, "entry \(entry.name.safeForMessage) is stored but its sizes differ (\(entry.compressedSize), \(entry.size))")
        }
        let header = try source.read(entry.localHeaderOffset..<min(entry.localHeaderOffset + 30, source.count))
        guard header.count == 30, header.u32(0) == 0x0403_4b50 else {
            throw .badCheckpoint(path, "entry \(entry.name.safeForMessage): no local header at \(entry.localHeaderOffset)")
        }
        let start = entry.localHeaderOffset + 30 + Int(header.u16(26)) + Int(header.u16(28))
        guard start <= centralDirectoryOffset, entry.size <= centralDirectoryOffset - start else {
            throw .badCheckpoint(path, "entry \(entry.name.safeForMessage) (\(entry.size) bytes at \(start)) runs into the central directory")
        }
        return start..<(start + entry.size)
    }

    /// A whole stored entry, its CRC-32 checked.
    func read(_ entry: Entry, from source: some ByteSource) throws(ModelError) -> [UInt8] {
        let bytes = try source.read(try dataRange(of: entry, in: source))
        guard CRC32.checksum(bytes) == entry.crc32 else {
            throw .badCheckpoint(path, "entry \(entry.name.safeForMessage) fails its CRC-32 check (corrupt download?)")
        }
        return bytes
    }
}

extension [UInt8] {
    func u16(_ i: Int) -> UInt16 { UInt16(self[i]) | UInt16(self[i + 1]) << 8 }
    func u32(_ i: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(self[i + $1]) << (8 * $1) } }
    func u64(_ i: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(self[i + $1]) << (8 * $1) } }
}

extension String {
    /// At most 200 characters, control characters escaped: safe to put a name from a file in a message.
    var safeForMessage: String {
        let escaped = unicodeScalars.prefix(200).map { $0.properties.generalCategory == .control ? $0.escaped(asASCII: true) : String($0) }.joined()
        return unicodeScalars.count > 200 ? escaped + "…" : escaped
    }
}
