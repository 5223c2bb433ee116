import BLIPProtocol
import BLIPTestSupport
import Dispatch
import Foundation

/// A tiny blip.v1 server on a temporary Unix socket, scripted by a handler, that records every
/// envelope it receives. Plain POSIX, one reader queue per connection, each read through a
/// ``RawClient`` adopting the accepted socket.
final class FakeServer: @unchecked Sendable {
    /// One accepted connection, as the handler sees it.
    final class Peer: @unchecked Sendable {
        /// The connection; only the reader queue receives on it.
        let connection: RawClient
        private let writeLock = NSLock()

        init(fd: Int32) { connection = RawClient(adopting: fd) }

        /// Sends one envelope as a frame (nothing if the client has gone).
        func send(_ envelope: Envelope) {
            writeLock.withLock { try? connection.send(envelope) }
        }

        /// Drops the connection, as a crashing daemon would.
        func close() { shutdown(connection.fd, Int32(SHUT_RDWR)) }
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
        let bound = UnixSocketAddress.with(path) { bind(listenFD, $0, $1) }
        guard bound == 0, listen(listenFD, 16) == 0 else {
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
        // Threads of their own, not GCD's pool: under a busy parallel test run a blocked pool
        // could leave the fake server unscheduled past a client's timeout.
        Thread { self.acceptLoop() }.start()
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
            Thread { self.readLoop(peer) }.start()
        }
    }

    /// Until the client goes (or sends a frame over 64 MiB): undecodable envelopes are skipped.
    private func readLoop(_ peer: Peer) {
        while let frame = try? peer.connection.receiveFrame(timeout: .infinity) {
            guard let envelope = try? Envelope(decoding: frame) else { continue }
            lock.withLock { _received.append(envelope) }
            handler(envelope, peer)
        }
    }
}
