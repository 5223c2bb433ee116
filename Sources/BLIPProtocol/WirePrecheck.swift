import BlipProtoC

/// What is checked in a message's bytes before protobuf-c parses them, from a walk over its tags
/// that allocates nothing, guided by the message's protobuf-c descriptor (which says which fields
/// are strings and which are sub-messages to walk into):
///
/// - **Field count.** protobuf-c keeps every unknown field and every element of a repeated field as
///   its own allocation: a frame of millions of two-byte fields would cost ~40× its size in memory
///   (and its time on the event loop) before any limit on a field's count could be checked. Every
///   message of this protocol holds a few dozen fields at most (8 prompts, 64 bad words), so a
///   message or sub-message with more than ``limit`` is refused. `bytes` fields (an image) are
///   skipped over by their length.
/// - **No NUL in strings.** protobuf-c hands strings over as C strings, so a string holding a NUL
///   byte would arrive cut at it (a prompt `"a\0b"` read as `"a"`, a method `"a\0b"` as `"a"`):
///   such a string is refused instead (docs/protocol.md §2).
public enum WirePrecheck {
    /// Fields one message level may hold.
    public static let limit = 1024

    /// Walks `bytes` as the message `descriptor` describes, recursing into its sub-messages.
    /// Bytes that do not walk as a message are left to protobuf-c, which reports them.
    /// - Throws: ``MessageDecodingError/invalidField(message:field:reason:)`` past ``limit``, or
    ///   for a string field holding a NUL byte.
    static func check(_ bytes: UnsafeBufferPointer<UInt8>, descriptor: ProtobufCMessageDescriptor) throws(MessageDecodingError) {
        var message: String { String(cString: descriptor.short_name) }  // for errors only
        var position = 0
        var count = 0
        func varint() -> UInt64? {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while position < bytes.count, shift < 64 {
                let byte = bytes[position]
                position += 1
                value |= UInt64(byte & 0x7f) << shift
                if byte & 0x80 == 0 { return value }
                shift += 7
            }
            return nil
        }
        while position < bytes.count {
            guard let tag = varint() else { return }
            count += 1
            if count > limit {
                throw .invalidField(message: message, field: "(fields)",
                                    reason: "holds more than \(limit) fields; no message of blip.v1 needs that many (repeated or unknown fields)")
            }
            switch tag & 7 {
            case 0:
                guard varint() != nil else { return }
            case 1:
                position += 8
            case 2:
                guard let length = varint(), length <= UInt64(bytes.count - position) else { return }
                let value = UnsafeBufferPointer(rebasing: bytes[position..<(position + Int(length))])
                position += Int(length)
                guard let number = UInt32(exactly: tag >> 3),
                      let field = withUnsafePointer(to: descriptor, { protobuf_c_message_descriptor_get_field($0, number) })?.pointee
                else { continue }  // an unknown field: kept or skipped by protobuf-c, never read
                switch field.type {
                case PROTOBUF_C_TYPE_STRING where value.contains(0):
                    throw .invalidField(message: message, field: String(cString: field.name),
                                        reason: "contains a NUL byte; strings of blip.v1 are text without NUL (docs/protocol.md §2)")
                case PROTOBUF_C_TYPE_MESSAGE:
                    guard let sub = field.descriptor else { continue }
                    try check(value, descriptor: sub.assumingMemoryBound(to: ProtobufCMessageDescriptor.self).pointee)
                default:
                    break
                }
            case 5:
                position += 4
            default:
                return  // groups or garbage: protobuf-c decides
            }
        }
    }
}
