import Glibc

/// A `sockaddr_un` for a filesystem path, for tests that bind or connect Unix sockets by hand.
public enum UnixSocketAddress {
    /// Calls `body` with `path` as a `sockaddr` and its length (the whole `sockaddr_un`).
    ///
    /// The path must fit `sun_path` with its terminating NUL (107 bytes on Linux); test paths
    /// under a ``TemporaryDirectory`` do.
    /// - Parameters:
    ///   - path: The socket's path.
    ///   - body: Typically `{ connect(fd, $0, $1) }` or `{ bind(fd, $0, $1) }`.
    public static func with<Result>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) throws -> Result) rethrows -> Result {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            precondition(bytes.count < raw.count, "socket path of \(bytes.count) bytes does not fit sun_path: \(path)")
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return try withUnsafePointer(to: &address) {
            try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                try body($0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
    }
}
