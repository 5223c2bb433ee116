import BLIPSocket
import Glibc

/// Why the daemon could not get a listening socket.
public enum ListenerError: Error, Sendable, Hashable, CustomStringConvertible {
    /// `LISTEN_FDS` is set, but none of the passed descriptors is a caption-API socket (a
    /// listening Unix stream socket with a name not reserved for another role); `details`
    /// lists what was passed and why each was not served.
    case noUsableSystemdSocket(details: String)
    /// `sd_listen_fds_with_names` failed (errno `code`).
    case systemdFailed(code: Int32)
    /// The socket path does not fit in `sockaddr_un.sun_path`.
    case pathTooLong(path: String, limit: Int)
    /// Another process accepts connections on `path`.
    case socketInUse(path: String)
    /// `path` exists and is not a socket.
    case notASocket(path: String)
    /// A system call failed.
    case system(call: String, path: String, errno: Int32)

    public var description: String {
        switch self {
        case let .noUsableSystemdSocket(details):
            "LISTEN_FDS is set but systemd passed no usable listening Unix stream socket (\(details)); the daemon serves a listening AF_UNIX stream socket (ListenStream=PATH, Accept=no in the .socket unit) with any FileDescriptorName= except \(ListeningSocket.reservedNames.keys.sorted().joined(separator: ", ")) (reserved)"
        case let .systemdFailed(code):
            "sd_listen_fds_with_names failed: \(errnoText(code)); check LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES"
        case let .pathTooLong(path, limit):
            "socket path \(path) is \(path.utf8.count) bytes; a Unix socket path holds at most \(limit); choose a shorter --socket"
        case let .socketInUse(path):
            "another process is serving on \(path); stop it first or choose another --socket"
        case let .notASocket(path):
            "\(path) exists and is not a socket; remove it or choose another --socket"
        case let .system(call, path, code):
            "\(call) \(path): \(errnoText(code))"
        }
    }
}
