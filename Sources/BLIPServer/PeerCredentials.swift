import Glibc
import NIOCore

/// Who is on the other end of a Unix socket, as the kernel saw it at `connect` (`SO_PEERCRED`).
public struct PeerCredentials: Sendable, Hashable, CustomStringConvertible {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32

    public init(pid: Int32, uid: UInt32, gid: UInt32) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
    }

    /// The peer of connected socket `fd`, or `nil` when the kernel cannot say.
    static func of(_ fd: Int32) -> PeerCredentials? {
        // struct ucred { pid_t pid; uid_t uid; gid_t gid; }: three 32-bit fields.
        var raw: (Int32, UInt32, UInt32) = (0, 0, 0)
        var length = socklen_t(MemoryLayout.size(ofValue: raw))
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &raw, &length) == 0,
              Int(length) == MemoryLayout.size(ofValue: raw) else { return nil }
        return PeerCredentials(pid: raw.0, uid: raw.1, gid: raw.2)
    }

    /// Whether the allow-lists let this peer in: no lists means everyone; otherwise its uid or
    /// its gid must be listed.
    func isAllowed(uids: Set<UInt32>?, gids: Set<UInt32>?) -> Bool {
        if uids == nil && gids == nil { return true }
        return uids?.contains(uid) == true || gids?.contains(gid) == true
    }

    public var description: String { "pid \(pid) uid \(uid) gid \(gid)" }
}

extension PeerCredentials {
    /// The peer of a Unix-socket channel, or `nil` (TCP, or the kernel cannot say). On the
    /// channel's event loop the option is read at once.
    static func of(_ channel: Channel) -> PeerCredentials? {
        guard let provider = channel as? SocketOptionProvider else { return nil }
        // struct ucred { pid_t pid; uid_t uid; gid_t gid; }: three 32-bit fields.
        let future: EventLoopFuture<(Int32, UInt32, UInt32)> = provider.unsafeGetSocketOption(
            level: NIOBSDSocket.OptionLevel(rawValue: SOL_SOCKET), name: NIOBSDSocket.Option(rawValue: SO_PEERCRED))
        var result: PeerCredentials?
        future.whenSuccess { raw in result = PeerCredentials(pid: raw.0, uid: raw.1, gid: raw.2) }
        return result
    }
}
