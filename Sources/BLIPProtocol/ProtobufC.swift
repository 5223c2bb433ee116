import CProtobufC

/// The glue between Swift values and protobuf-c's generated functions.
///
/// Decoding: `unpack` parses into C structs protobuf-c allocates; the mapping copies every
/// value out, and `free_unpacked` runs on every path. Encoding: the mapping builds the C structs
/// in a ``CArena`` whose memory lives until `pack` has written the bytes.
enum ProtobufC {
    /// Runs `read` on the message protobuf-c unpacks from `bytes`, then frees it. The bytes are
    /// checked first (``WirePrecheck``) as the message `descriptor` describes: its fields counted,
    /// its strings free of NUL, and its sub-messages' too.
    static func decode<CMessage, Result>(
        _ bytes: [UInt8],
        descriptor: ProtobufCMessageDescriptor,
        unpack: (Int, UnsafePointer<UInt8>) -> UnsafeMutablePointer<CMessage>?,
        free: (UnsafeMutablePointer<CMessage>) -> Void,
        read: (borrowing CMessage) throws(MessageDecodingError) -> Result
    ) throws(MessageDecodingError) -> Result {
        try bytes.withUnsafeBufferPointer { (buffer) throws(MessageDecodingError) in
            try WirePrecheck.check(buffer, descriptor: descriptor)
        }
        let unpacked: UnsafeMutablePointer<CMessage>? = bytes.withUnsafeBufferPointer { buffer in
            // An empty array may have no storage; protobuf-c reads nothing when the length is 0.
            withUnsafePointer(to: UInt8(0)) { empty in
                unpack(buffer.count, buffer.baseAddress ?? empty)
            }
        }
        guard let unpacked else {
            throw .malformed(message: String(cString: descriptor.short_name), byteCount: bytes.count)
        }
        defer { free(unpacked) }
        return try read(unpacked.pointee)
    }

    /// The bytes protobuf-c packs from `message`.
    static func encode<CMessage>(
        _ message: CMessage,
        packedSize: (UnsafePointer<CMessage>) -> Int,
        pack: (UnsafePointer<CMessage>, UnsafeMutablePointer<UInt8>) -> Int
    ) -> [UInt8] {
        withUnsafePointer(to: message) { pointer in
            let size = packedSize(pointer)
            guard size > 0 else { return [] }
            return [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
                count = pack(pointer, buffer.baseAddress!)
                precondition(count == size, "protobuf-c packed \(count) bytes after sizing \(size)")
            }
        }
    }

    // MARK: Reading C fields

    /// A string field as Swift text; protobuf-c does not check UTF-8, so this does.
    static func string(
        _ pointer: UnsafeMutablePointer<CChar>?, message: String, field: String
    ) throws(MessageDecodingError) -> String {
        guard let pointer else { return "" }
        guard let text = String(validatingCString: pointer) else {
            throw .invalidField(message: message, field: field, reason: "is not valid UTF-8")
        }
        return text
    }

    /// A proto2 optional string field: `nil` when unset.
    static func optionalString(
        _ pointer: UnsafeMutablePointer<CChar>?, message: String, field: String
    ) throws(MessageDecodingError) -> String? {
        guard pointer != nil else { return nil }
        return try string(pointer, message: message, field: field)
    }

    /// A bytes field, copied out of protobuf-c's memory.
    static func bytes(_ data: ProtobufCBinaryData) -> [UInt8] {
        guard data.len > 0, let base = data.data else { return [] }
        return Array(UnsafeBufferPointer(start: base, count: data.len))
    }

    /// A repeated scalar field, copied out.
    static func array<Element>(_ base: UnsafeMutablePointer<Element>?, count: Int) -> [Element] {
        guard count > 0, let base else { return [] }
        return Array(UnsafeBufferPointer(start: base, count: count))
    }

    /// A proto2 optional scalar: `nil` unless protobuf-c saw it on the wire.
    static func optional<Value>(_ has: protobuf_c_boolean, _ value: Value) -> Value? {
        has != 0 ? value : nil
    }
}

/// Owns the C memory one encode needs (strings, byte copies, sub-messages, arrays) and frees
/// it all when the encode is done. Lives inside one function call; never shared.
final class CArena {
    private var allocations: [UnsafeMutableRawPointer] = []

    /// Runs `body` with a fresh arena and frees everything it allocated afterwards.
    static func with<Result>(_ body: (CArena) -> Result) -> Result {
        let arena = CArena()
        defer { arena.freeAll() }
        return body(arena)
    }

    /// A NUL-terminated copy of `text`. (An embedded NUL would end the string early:
    /// protobuf-c strings are C strings.)
    func cString(_ text: String) -> UnsafeMutablePointer<CChar> {
        let terminated = text.utf8CString
        let pointer = allocate(CChar.self, count: terminated.count)
        pointer.initialize(from: Array(terminated), count: terminated.count)
        return pointer
    }

    /// A proto2 optional string: `NULL` (unset) for `nil`.
    func optionalCString(_ text: String?) -> UnsafeMutablePointer<CChar>? {
        text.map(cString)
    }

    /// A bytes field holding a copy of `bytes`.
    func binary(_ bytes: [UInt8]) -> ProtobufCBinaryData {
        guard !bytes.isEmpty else { return ProtobufCBinaryData(len: 0, data: nil) }
        return ProtobufCBinaryData(len: bytes.count, data: array(bytes))
    }

    /// A C array holding a copy of `values`, or `NULL` when empty.
    func array<Element>(_ values: [Element]) -> UnsafeMutablePointer<Element>? {
        guard !values.isEmpty else { return nil }
        let pointer = allocate(Element.self, count: values.count)
        pointer.initialize(from: values, count: values.count)
        return pointer
    }

    /// A C value that stays put until the arena is freed (for sub-message pointers).
    func store<Element>(_ value: Element) -> UnsafeMutablePointer<Element> {
        let pointer = allocate(Element.self, count: 1)
        pointer.initialize(to: value)
        return pointer
    }

    private func allocate<Element>(_: Element.Type, count: Int) -> UnsafeMutablePointer<Element> {
        let pointer = UnsafeMutablePointer<Element>.allocate(capacity: max(count, 1))
        allocations.append(UnsafeMutableRawPointer(pointer))
        return pointer
    }

    private func freeAll() {
        // Everything stored is a trivial C value, so deallocating without deinitializing is fine.
        for pointer in allocations { pointer.deallocate() }
        allocations = []
    }
}

/// protobuf-c's boolean.
extension Bool {
    var protobufC: protobuf_c_boolean { self ? 1 : 0 }
}
