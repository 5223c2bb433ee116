import BLIPProtocol

/// Why a ``CaptionClient`` call failed: the daemon's answer, or the transport's.
public enum CaptionClientError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The daemon answered with a status other than `OK`; the error carries its code and message.
    case rpc(RPCError)
    /// Nothing listens at `path` (no socket file, or nobody accepting on it).
    case noDaemon(path: String)
    /// The socket at `path` exists but this user may not connect to it.
    case permissionDenied(path: String)
    /// The connection broke (daemon gone, reset, closed) before the call's reply arrived.
    case connectionLost(String)
    /// The call's deadline passed without a reply (the daemon may be hung or overloaded).
    case deadlineExceeded
    /// The daemon sent bytes that do not follow docs/protocol.md.
    case protocolViolation(String)

    /// The status code this error is reported as: the daemon's for ``rpc(_:)``, gRPC's usual
    /// choice for a transport failure otherwise (so a CLI can count errors by code).
    public var code: StatusCode {
        switch self {
        case let .rpc(error): error.code
        case .noDaemon, .connectionLost: .unavailable
        case .permissionDenied: .permissionDenied
        case .deadlineExceeded: .deadlineExceeded
        case .protocolViolation: .internal
        }
    }

    public var description: String {
        switch self {
        case let .rpc(error):
            "\(error.code.name): \(error.message)"
        case let .noDaemon(path):
            "no daemon at \(path): is blip-captiond.socket enabled? (systemctl enable --now blip-captiond.socket)"
        case let .permissionDenied(path):
            "permission denied on \(path): add yourself to group blip-caption"
        case let .connectionLost(reason):
            "connection to blip-captiond lost: \(reason)"
        case .deadlineExceeded:
            "deadline exceeded: blip-captiond did not answer in time; raise the timeout or check the daemon (blip-caption info)"
        case let .protocolViolation(reason):
            "protocol violation by blip-captiond: \(reason); check that client and daemon speak blip.v1"
        }
    }
}
