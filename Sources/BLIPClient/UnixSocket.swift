#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import BLIPSocket

/// The few POSIX socket calls the client needs, with errno turned into ``CaptionClientError``.
enum UnixSocket {
    /// Connects a stream socket to `path`.
    ///
    /// A Unix socket's `connect` blocks while the listener's backlog is full (a daemon that
    /// stopped accepting); `SO_SNDTIMEO` bounds that wait on Linux, so it is set to `timeout`
    /// for the connect and cleared afterwards.
    /// - Returns: The connected descriptor, blocking, close-on-exec.
    static func connect(path: String, timeout: Duration) throws(CaptionClientError) -> Int32 {
        guard let address = UnixSocketAddress.make(path) else {
            throw .connectionLost("cannot connect to \(path): a socket path must be 1 to \(UnixSocketAddress.maxPathBytes) bytes without NUL")
        }

        #if canImport(Darwin)
        let fd = socket(AF_UNIX, SOCK_STREAM, 0)
        #else
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        #endif
        guard fd >= 0 else { throw .connectionLost("cannot create a socket: \(errnoText(errno))") }
        #if canImport(Darwin)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
        #endif

        setSendTimeout(fd, timeout)
        let result = UnixSocketAddress.withSockaddr(address) { posixConnect(fd, $0, $1) }
        if result != 0 {
            let code = errno
            close(fd)
            throw error(connecting: path, errno: code)
        }
        setSendTimeout(fd, .zero)
        return fd
    }

    /// The error a failed `connect` to `path` reports.
    static func error(connecting path: String, errno code: Int32) -> CaptionClientError {
        switch code {
        case ENOENT, ECONNREFUSED, ENOTDIR:
            .noDaemon(path: path)
        case EACCES, EPERM:
            .permissionDenied(path: path, group: groupName(of: path))
        case EAGAIN, EINPROGRESS, ETIMEDOUT:
            // The backlog stayed full for the whole timeout: the daemon is not accepting.
            .deadlineExceeded
        default:
            .connectionLost("cannot connect to \(path): \(errnoText(code))")
        }
    }

    /// The name of the group that owns the file at `path`, or `nil` when it cannot be read.
    static func groupName(of path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        var entry = group()
        var result: UnsafeMutablePointer<group>?
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getgrgid_r(info.st_gid, &entry, &buffer, buffer.count, &result) == 0, result != nil, let name = entry.gr_name else {
            return "\(info.st_gid)"
        }
        return String(cString: name)
    }

    /// Writes all of `bytes`, retrying short writes and interruptions.
    /// - Returns: `nil`, or the errno that stopped the write.
    static func sendAll(_ fd: Int32, _ bytes: [UInt8]) -> Int32? {
        bytes.withUnsafeBytes { raw -> Int32? in
            var offset = 0
            while offset < raw.count {
                #if canImport(Darwin)
                let flags: Int32 = 0
                #else
                let flags = Int32(MSG_NOSIGNAL)  // a dead peer is an error, not a SIGPIPE
                #endif
                let n = send(fd, raw.baseAddress! + offset, raw.count - offset, flags)
                if n < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                offset += n
            }
            return nil
        }
    }

    private static func setSendTimeout(_ fd: Int32, _ timeout: Duration) {
        let (seconds, attoseconds) = max(timeout, .zero).components
        var value = timeval()
        value.tv_sec = .init(clamping: seconds)
        value.tv_usec = .init(attoseconds / 1_000_000_000_000)
        if timeout > .zero, value.tv_sec == 0, value.tv_usec == 0 { value.tv_usec = 1 }
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
    }
}

/// The libc `connect`, out of reach inside `UnixSocket` whose own `connect` shadows it.
private func posixConnect(_ fd: Int32, _ address: UnsafePointer<sockaddr>, _ length: socklen_t) -> Int32 {
    connect(fd, address, length)
}
