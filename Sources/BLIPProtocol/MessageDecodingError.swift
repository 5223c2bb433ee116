/// Bytes that are not a valid message of the expected type.
public enum MessageDecodingError: Error, Sendable, Hashable, CustomStringConvertible {
    /// protobuf-c could not parse the bytes as `message`: they are garbage, truncated, or a
    /// message of another type whose field numbers clash with this one's.
    case malformed(message: String, byteCount: Int)
    /// The bytes parse, but `field` of `message` holds a value the protocol does not allow.
    case invalidField(message: String, field: String, reason: String)

    public var description: String {
        switch self {
        case let .malformed(message, byteCount):
            "\(byteCount) bytes are not a valid blip.v1.\(message); check that the payload matches the method and that the sender uses proto/blip/v1"
        case let .invalidField(message, field, reason):
            "blip.v1.\(message).\(field) \(reason)"
        }
    }
}

extension MessageDecodingError: RPCErrorConvertible {
    /// The request itself is wrong, so retrying it unchanged cannot help.
    public var rpcErrorCode: StatusCode { .invalidArgument }
}
