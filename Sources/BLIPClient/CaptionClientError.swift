import BLIPProtocol

/// Why a ``CaptionClient`` call failed: the daemon's answer, or the transport's.
public enum CaptionClientError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The daemon answered with a status other than `OK`; the error carries its code and message.
    case rpc(RPCError)
    /// Nothing listens at `path` (no socket file, or nobody accepting on it).
    case noDaemon(path: String)
    /// The socket at `path` exists but this user may not connect to it; `group` is the socket
    /// file's group (whose members may, with the units' `SocketMode=0660`), when it could be read.
    case permissionDenied(path: String, group: String? = nil)
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

    /// What starts a daemon on `path`: the systemd unit whose socket it is (the default socket's
    /// `blip-captiond.socket`, or a template instance's `/run/blip-captiond/NAME.sock`), else the
    /// daemon itself.
    static func startHint(for path: String) -> String {
        if path == CaptionClient.defaultSocketPath {
            return "is blip-captiond.socket enabled? (systemctl enable --now blip-captiond.socket)"
        }
        let defaultPath = CaptionClient.defaultSocketPath
        let directory = String(defaultPath[...defaultPath.lastIndex(of: "/")!])  // "/run/blip-captiond/"
        if path.hasPrefix(directory), path.hasSuffix(".sock") {
            let name = path.dropFirst(directory.count).dropLast(".sock".count)
            if !name.isEmpty, !name.contains("/") {
                return "is blip-captiond@\(name).socket enabled? (systemctl enable --now blip-captiond@\(name).socket)"
            }
        }
        return "nothing listens there; check the path, or start one there (blip-captiond --socket \(path))"
    }

    public var description: String {
        switch self {
        case let .rpc(error):
            "\(error.code.name): \(error.message)"
        case let .noDaemon(path):
            "no daemon at \(path): " + Self.startHint(for: path)
        case let .permissionDenied(path, group?):
            "permission denied on \(path): its group is \(group); add yourself to it (usermod -aG \(group) $USER), then log in again"
        case let .permissionDenied(path, nil):
            "permission denied on \(path): ask its owner for access, or pass another socket"
        case let .connectionLost(reason):
            "connection to blip-captiond lost: \(reason)"
        case .deadlineExceeded:
            "deadline exceeded: blip-captiond did not answer in time; raise the timeout or check the daemon (blip-caption info)"
        case let .protocolViolation(reason):
            "protocol violation by blip-captiond: \(reason); check that client and daemon speak blip.v1"
        }
    }
}
