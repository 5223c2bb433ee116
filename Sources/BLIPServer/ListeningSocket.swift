import CSystemd
import BLIPSocket
import Glibc

/// A listening Unix stream socket: adopted from systemd (socket activation) or bound by the
/// daemon itself when started by hand.
public struct ListeningSocket: Sendable {
    /// The listening descriptor.
    public let fileDescriptor: Int32
    /// For logs: the systemd `FileDescriptorName=` or the bound path.
    public let name: String
    /// The path this process bound (and removes on ``close()``); `nil` for adopted sockets,
    /// whose file systemd owns.
    public let boundPath: String?

    /// What a descriptor systemd passes is for, by its `FileDescriptorName=`.
    public enum Role: Sendable, Hashable {
        /// The caption API (docs/protocol.md): every name that is not reserved, including
        /// systemd's defaults (the socket unit's name, e.g. `captions.socket` or
        /// `blip-captiond@large.socket`, or `unknown` without `LISTEN_FDNAMES`).
        case captionAPI
        /// The HTTP face (`/healthz`, `/readyz`, `/metrics`, `/v1/…`).
        case http
    }

    /// The `FileDescriptorName=` values reserved for roles other than the caption API. A
    /// descriptor with one of these names is left open for that role's listener.
    public static let reservedNames: [String: Role] = ["http": .http]

    /// The role of a descriptor systemd passed under `name`.
    public static func role(forName name: String) -> Role {
        reservedNames[name] ?? .captionAPI
    }

    /// The descriptors systemd passed, by role.
    public struct SystemdSockets: Sendable {
        /// The listening Unix stream sockets to serve the caption API on; never empty.
        public var captionAPI: [ListeningSocket]
        /// Descriptors named for another role, by role (`.http`: the HTTP face), left open for
        /// that role's listener.
        public var reserved: [Role: [ListeningSocket]]
    }

    /// The sockets systemd passed (`sd_listen_fds_with_names`), by role, or `nil` when
    /// `LISTEN_FDS` is not set (the daemon was started by hand).
    ///
    /// Every listening `AF_UNIX` stream socket whose name is not in ``reservedNames`` is a
    /// caption-API socket, whatever its name. A descriptor with a reserved name is left open
    /// for its role (in ``SystemdSockets/reserved``); any other descriptor is closed.
    ///
    /// - Parameters:
    ///   - log: Receives one line per descriptor that is closed or left for another role.
    /// - Throws: `ListenerError.noUsableSystemdSocket` when `LISTEN_FDS` is set but no
    ///   caption-API socket was passed (reserved descriptors are left open then too).
    public static func adoptFromSystemd(log: (String) -> Void = { _ in }) throws(ListenerError) -> SystemdSockets? {
        guard let listenFDs = getenv("LISTEN_FDS").map({ String(cString: $0) }) else { return nil }
        var names: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
        let count = sd_listen_fds_with_names(1, &names)
        guard count >= 0 else { throw .systemdFailed(code: -count) }
        defer {
            if let names {
                for i in 0..<Int(count) { free(names[i]) }
                free(names)
            }
        }
        var sockets = SystemdSockets(captionAPI: [], reserved: [:])
        var refused: [String] = []
        for i in 0..<Int(count) {
            let fd = SD_LISTEN_FDS_START + Int32(i)
            let name = names?[i].map { String(cString: $0) } ?? "unknown"
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            switch role(forName: name) {
            case .captionAPI where sd_is_socket(fd, AF_UNIX, Int32(SOCK_STREAM.rawValue), 1) > 0:
                sockets.captionAPI.append(ListeningSocket(fileDescriptor: fd, name: name, boundPath: nil))
            case .captionAPI:
                let reason = "fd \(fd) \"\(name)\": not a listening AF_UNIX stream socket"
                refused.append(reason)
                log("ignoring " + reason)
                Glibc.close(fd)
            case .http:
                let reason = "fd \(fd) named http: the HTTP listener"
                refused.append(reason)
                log(reason)
                sockets.reserved[.http, default: []].append(ListeningSocket(fileDescriptor: fd, name: name, boundPath: nil))
            }
        }
        guard !sockets.captionAPI.isEmpty else {
            let details = count == 0
                ? "LISTEN_FDS=\(listenFDs) but no descriptor is for this process (LISTEN_PID)"
                : refused.joined(separator: "; ")
            throw .noUsableSystemdSocket(details: details)
        }
        return sockets
    }

    /// Binds and listens on `path`, creating its directory. A stale socket file (nobody
    /// accepts on it: `connect` is refused) is removed; a live one is never stolen.
    ///
    /// - Parameters:
    ///   - path: Where to create the socket.
    ///   - mode: The socket file's permissions, e.g. `0o660`.
    ///   - backlog: The kernel's queue of connections not yet accepted.
    /// - Throws: `ListenerError` naming the path and what to do.
    public static func bind(path: String, mode: mode_t = 0o660, backlog: Int32 = 128) throws(ListenerError) -> ListeningSocket {
        let address = try socketAddress(path)
        try createParentDirectory(of: path)
        try removeStaleSocket(at: path, address: address)

        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .system(call: "socket", path: path, errno: errno) }
        let bound = UnixSocketAddress.withSockaddr(address) { Glibc.bind(fd, $0, $1) }
        guard bound == 0 else {
            let code = errno
            Glibc.close(fd)
            throw code == EADDRINUSE ? .socketInUse(path: path) : .system(call: "bind", path: path, errno: code)
        }
        guard chmod(path, mode) == 0 else {
            let code = errno
            Glibc.close(fd); unlink(path)
            throw .system(call: "chmod", path: path, errno: code)
        }
        guard listen(fd, backlog) == 0 else {
            let code = errno
            Glibc.close(fd); unlink(path)
            throw .system(call: "listen", path: path, errno: code)
        }
        return ListeningSocket(fileDescriptor: fd, name: path, boundPath: path)
    }

    /// Stops listening: closes this process's descriptor and removes a socket file it bound.
    /// (An adopted socket stays open in systemd, which starts the daemon again on the next
    /// connection.)
    public func close() {
        if let boundPath { unlink(boundPath) }
        Glibc.close(fileDescriptor)
    }

    // MARK: Helpers

    static func socketAddress(_ path: String) throws(ListenerError) -> sockaddr_un {
        guard let address = UnixSocketAddress.make(path) else {
            throw .pathTooLong(path: path, limit: UnixSocketAddress.maxPathBytes)
        }
        return address
    }

    private static func createParentDirectory(of path: String) throws(ListenerError) {
        var components = path.split(separator: "/", omittingEmptySubsequences: false).dropLast()
        guard !components.isEmpty else { return }
        var current = path.hasPrefix("/") ? "" : "."
        if components.first == "" { components = components.dropFirst() }
        for component in components where !component.isEmpty {
            current += "/" + component
            if mkdir(current, 0o755) != 0, errno != EEXIST {
                throw .system(call: "mkdir", path: current, errno: errno)
            }
        }
    }

    private static func removeStaleSocket(at path: String, address: sockaddr_un) throws(ListenerError) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }  // nothing there
        guard info.st_mode & S_IFMT == S_IFSOCK else { throw .notASocket(path: path) }
        let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard probe >= 0 else { throw .system(call: "socket", path: path, errno: errno) }
        defer { Glibc.close(probe) }
        let connected = UnixSocketAddress.withSockaddr(address) { connect(probe, $0, $1) }
        if connected == 0 { throw .socketInUse(path: path) }
        // Only "nobody listens" makes the file stale; anything else (EACCES, EAGAIN: a full
        // backlog of a live server) means leave it alone.
        guard errno == ECONNREFUSED else { throw .system(call: "connect (probing for a live server on)", path: path, errno: errno) }
        guard unlink(path) == 0 || errno == ENOENT else { throw .system(call: "unlink stale socket", path: path, errno: errno) }
    }
}
