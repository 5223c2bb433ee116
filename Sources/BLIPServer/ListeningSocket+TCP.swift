import Glibc

extension ListeningSocket {
    /// Binds and listens on a TCP address (`--http-listen HOST:PORT`), with `SO_REUSEADDR` so a
    /// restart does not wait for the old connections' TIME_WAIT. The first address `host`
    /// resolves to is used (numeric addresses resolve to themselves).
    ///
    /// - Parameters:
    ///   - host: A name or a numeric IPv4/IPv6 address (`127.0.0.1`, `::1`).
    ///   - port: 0 for any free port.
    ///   - backlog: The kernel's queue of connections not yet accepted.
    /// - Throws: `ListenerError.system` naming the address and the call that failed.
    public static func bind(host: String, port: Int, backlog: Int32 = 128) throws(ListenerError) -> ListeningSocket {
        let name = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var found: UnsafeMutablePointer<addrinfo>?
        let resolved = getaddrinfo(host, String(port), &hints, &found)
        guard resolved == 0, let address = found else {
            throw .system(call: "resolve (\(String(cString: gai_strerror(resolved))))", path: name, errno: EINVAL)
        }
        defer { freeaddrinfo(found) }
        let fd = socket(address.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .system(call: "socket", path: name, errno: errno) }
        var on: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        guard Glibc.bind(fd, address.pointee.ai_addr, address.pointee.ai_addrlen) == 0 else {
            let code = errno
            Glibc.close(fd)
            throw .system(call: "bind", path: name, errno: code)
        }
        guard listen(fd, backlog) == 0 else {
            let code = errno
            Glibc.close(fd)
            throw .system(call: "listen", path: name, errno: code)
        }
        return ListeningSocket(fileDescriptor: fd, name: name, boundPath: nil)
    }

    /// Binds the HTTP face's address as `--http-listen` gives it: `HOST:PORT` (`[::1]:8080` for
    /// IPv6, an empty host for 127.0.0.1) or a Unix socket path (anything with a `/`).
    /// - Throws: `ListenerError` naming the address and what failed (a port in use: `bind` EADDRINUSE).
    public static func bind(httpAddress address: String) throws(ListenerError) -> ListeningSocket {
        if address.contains("/") { return try bind(path: address) }
        let (host, port) = try hostAndPort(address)
        return try bind(host: host, port: port)
    }

    /// `HOST:PORT` (`[::1]:8080` for IPv6) split.
    static func hostAndPort(_ address: String) throws(ListenerError) -> (String, Int) {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]),
              (0...65535).contains(port) else {
            throw .system(call: "parse --http-listen (HOST:PORT or a socket path)", path: address, errno: EINVAL)
        }
        var host = String(address[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host.isEmpty ? "127.0.0.1" : host, port)
    }
}
