@_exported import BLIPSocket
import Glibc

extension UnixSocketAddress {
    /// Calls `body` with `path` as a `sockaddr` and its length, for tests that bind or connect
    /// Unix sockets by hand (the address checks are BLIPSocket's, the same as the daemon's).
    /// - Precondition: `path` fits `sun_path` (test paths under a ``TemporaryDirectory`` do).
    public static func with<Result>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Result) -> Result {
        guard let address = make(path) else { preconditionFailure("socket path does not fit sun_path: \(path)") }
        return withSockaddr(address, body)
    }
}
