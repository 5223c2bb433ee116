import BLIPProtocol
import Dispatch
import Foundation

/// A tiny blip.v1 server on a temporary Unix socket, scripted by a handler, that records every
/// envelope it receives. Plain POSIX, one reader queue per connection.
final class FakeServer: @unchecked Sendable {
    /// One accepted connection, as the handler sees it.
    final class Peer: @unchecked Sendable {
        let fd: Int32
        private let writeLock = NSLock()

        init(fd: Int32) { self.fd = fd }

        /// Sends one envelope as a frame.
        func send(_ envelope: Envelope) {
            let frame = try! FrameEncoder().encode(envelope.encoded())
            writeLock.withLock {
                _ = frame.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            }
        }

        /// Drops the connection, as a crashing daemon would.
        func close() { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    typealias Handler = @Sendable (Envelope, Peer) -> Void

    let path: String
    private let listenFD: Int32
    private let handler: Handler
    private let lock = NSLock()
    private var _received: [Envelope] = []
    private var _connections = 0

    /// Envelopes received so far, in arrival order.
    var received: [Envelope] { lock.withLock { _received } }
    /// Connections accepted so far.
    var connections: Int { lock.withLock { _connections } }

    init(handler: @escaping Handler) throws {
        path = FakeServer.temporaryPath()
        self.handler = handler
        listenFD = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: Array(path.utf8) + [0])
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listenFD, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard bound == 0, listen(listenFD, 16) == 0 else {
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
        DispatchQueue(label: "fake-server.accept").async { self.acceptLoop() }
    }

    /// A fresh socket path that nobody listens on.
    static func temporaryPath() -> String {
        "/tmp/blip-client-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
    }

    /// Stops accepting and removes the socket file (open connections end with the test process).
    func stop() {
        shutdown(listenFD, Int32(SHUT_RDWR))
        unlink(path)
    }

    /// Waits (up to 5 s) until `condition` holds for the envelopes received.
    func waitUntil(_ condition: ([Envelope]) -> Bool) async -> Bool {
        for _ in 0..<1000 {
            if condition(received) { return true }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return false
    }

    private func acceptLoop() {
        while true {
            let fd = accept(listenFD, nil, nil)
            if fd < 0 {
                if errno == EINTR { continue }
                Glibc.close(listenFD)
                return
            }
            lock.withLock { _connections += 1 }
            let peer = Peer(fd: fd)
            DispatchQueue(label: "fake-server.connection").async { self.readLoop(peer) }
        }
    }

    private func readLoop(_ peer: Peer) {
        var decoder = FrameDecoder(maxFrameBytes: 1 << 26)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(peer.fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            decoder.append(Array(buffer[0..<n]))
            while let frame = try? decoder.nextFrame() {
                guard let envelope = try? Envelope(decoding: frame) else { continue }
                lock.withLock { _received.append(envelope) }
                handler(envelope, peer)
            }
        }
        Glibc.close(peer.fd)
    }
}
