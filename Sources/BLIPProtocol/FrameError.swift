/// A byte stream that does not hold well-formed frames. After one of these the stream is out
/// of step (the next length prefix cannot be found), so the connection must be closed.
public enum FrameError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A length prefix (or a payload to send) of `length` bytes exceeds `limit`; the payload is
    /// never buffered.
    case frameTooLarge(length: UInt64, limit: Int)
    /// The stream ended inside a frame: `received` of `expected` bytes (prefix included) arrived.
    case truncated(expected: UInt64, received: UInt64)

    public var description: String {
        switch self {
        case let .frameTooLarge(length, limit):
            "frame of \(length) bytes exceeds the limit of \(limit) bytes; send a smaller image (InfoResponse.limits.max_frame_bytes says the server's limit)"
        case let .truncated(expected, received):
            "stream ended inside a frame after \(received) of \(expected) bytes; the peer closed the connection mid-message"
        }
    }
}

extension FrameError: RPCErrorConvertible {
    public var rpcErrorCode: StatusCode {
        switch self {
        case .frameTooLarge: .resourceExhausted
        case .truncated: .dataLoss
        }
    }
}
