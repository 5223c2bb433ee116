/// How many fields a message may carry on the wire, counted before protobuf-c parses it.
///
/// protobuf-c keeps every unknown field and every element of a repeated field as its own
/// allocation: a frame of millions of two-byte fields would cost ~40× its size in memory (and its
/// time on the event loop) before any limit on a field's count could be checked. Every message of
/// this protocol holds a few dozen fields at most (8 prompts, 64 bad words), so a message, or a
/// sub-message the caller names, with more than ``limit`` is refused from a walk over its tags,
/// which allocates nothing and skips over `bytes` fields (an image) by their length.
public enum WireFieldCount {
    /// Fields one message level may hold.
    public static let limit = 1024

    /// Walks `bytes` as `message`, recursing into the length-delimited fields `subMessages` names.
    /// Bytes that do not walk as a message are left to protobuf-c, which reports them.
    /// - Throws: ``MessageDecodingError/invalidField(message:field:reason:)`` past ``limit``.
    static func check(_ bytes: UnsafeBufferPointer<UInt8>, message: String,
                      subMessages: [UInt32: String] = [:]) throws(MessageDecodingError) {
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
                let start = position
                position += Int(length)
                if let name = subMessages[UInt32(truncatingIfNeeded: tag >> 3)] {
                    try check(UnsafeBufferPointer(rebasing: bytes[start..<position]), message: name)
                }
            case 5:
                position += 4
            default:
                return  // groups or garbage: protobuf-c decides
            }
        }
    }
}
