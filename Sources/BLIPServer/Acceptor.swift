import BLIPProtocol
import BLIPSocket
import Glibc
import NIOCore
import NIOHTTP1
import NIOPosix

/// Accepts connections on one listening socket, on the server's event loop. NIO serves a
/// duplicate of the listener's descriptor, so the listener's own close (and the removal of a
/// socket file it bound) stays with it.
///
/// Out of descriptors (EMFILE, ENFILE, ENOBUFS, ENOMEM), `accept` fails while the connection
/// stays queued, and the socket stays readable: rather than spin on it, the acceptor closes its
/// duplicate, logs once, and serves the listener again after ``pause`` (connections wait in
/// the kernel's backlog meanwhile).
final class Acceptor: @unchecked Sendable {
    // @unchecked: `channel` and `stopped` are touched only on `eventLoop`.
    static let pause: TimeAmount = .milliseconds(250)

    /// What the accepted connections speak.
    enum Role: Sendable {
        /// The framed protobuf RPC (``Connection``).
        case rpc
        /// HTTP/1.1 (``HTTPHandler``).
        case http
    }

    private let listener: ListeningSocket
    private let server: ServerContext
    private let eventLoop: EventLoop
    private let role: Role
    private var channel: Channel?
    private var stopped = false

    init(listener: ListeningSocket, server: ServerContext, eventLoop: EventLoop, role: Role = .rpc) {
        self.listener = listener
        self.server = server
        self.eventLoop = eventLoop
        self.role = role
    }

    /// Every connection: its gate first, then the protocol.
    private static func pipeline(_ channel: Channel, role: Role, server: ServerContext) -> EventLoopFuture<Void> {
        channel.eventLoop.makeCompletedFuture {
            let gate = ConnectionGate(id: server.nextConnectionID(), role: role, server: server, eventLoop: channel.eventLoop)
            let pipeline = channel.pipeline.syncOperations
            try pipeline.addHandler(gate)
            switch role {
            case .http:
                try pipeline.configureHTTPServerPipeline(withErrorHandling: true)
                try pipeline.addHandler(HTTPHandler(gate: gate, server: server, eventLoop: channel.eventLoop))
            case .rpc:
                try pipeline.addHandler(RPCFrameHandler(gate: gate, server: server))
                try pipeline.addHandler(Connection(gate: gate, server: server, eventLoop: channel.eventLoop))
            }
        }
    }

    /// Starts accepting; throws when the listener cannot be served at all.
    func start() throws {
        let channel = try bootstrap().withBoundSocket(try duplicate()).wait()
        try eventLoop.submit { self.channel = channel }.wait()
    }

    /// Stops accepting for good (shutdown); waits until the duplicate is closed.
    func stop() {
        let channel = try? eventLoop.submit { () -> Channel? in
            self.stopped = true
            defer { self.channel = nil }
            return self.channel
        }.wait()
        try? channel?.close().wait()
    }

    private func duplicate() throws -> CInt {
        let descriptor = dup(listener.fileDescriptor)
        guard descriptor >= 0 else { throw ListenerError.system(call: "dup", path: listener.name, errno: errno) }
        _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
        return descriptor
    }

    private func bootstrap() -> ServerBootstrap {
        let configuration = server.configuration
        return ServerBootstrap(group: eventLoop)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AcceptErrors(acceptor: self))
                }
            }
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelOption(.writeBufferWaterMark,
                                value: .init(low: configuration.maxQueuedBytes / 2, high: configuration.maxQueuedBytes))
            .childChannelInitializer { [server, role] channel in Self.pipeline(channel, role: role, server: server) }
    }

    /// An accept failed; on the loop.
    fileprivate func acceptFailed(_ error: IOError) {
        guard [EMFILE, ENFILE, ENOBUFS, ENOMEM].contains(error.errnoCode), let channel, !stopped else {
            server.log("accept on \(listener.name) failed: \(error), ignoring")
            return
        }
        server.log("accept on \(listener.name) failed: \(errnoText(error.errnoCode)); pausing accepts for \(Self.pause.nanoseconds / 1_000_000) ms")
        self.channel = nil
        eventLoop.execute { channel.close(promise: nil) }
        eventLoop.scheduleTask(in: Self.pause) { self.resume() }
    }

    private func resume() {
        guard !stopped else { return }
        do {
            bootstrap().withBoundSocket(try duplicate()).whenComplete { result in
                switch result {
                case .success(let channel):
                    if self.stopped { channel.close(promise: nil) } else { self.channel = channel }
                case .failure(let error):
                    self.server.log("accept on \(self.listener.name) cannot resume: \(error); retrying in \(Self.pause.nanoseconds / 1_000_000) ms")
                    self.eventLoop.scheduleTask(in: Self.pause) { self.resume() }
                }
            }
        } catch {
            server.log("accept on \(listener.name) cannot resume: \(error); retrying in \(Self.pause.nanoseconds / 1_000_000) ms")
            eventLoop.scheduleTask(in: Self.pause) { self.resume() }
        }
    }
}

/// Reports accept errors to the acceptor; connections pass through.
private final class AcceptErrors: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = Channel
    private let acceptor: Acceptor

    init(acceptor: Acceptor) { self.acceptor = acceptor }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? IOError { acceptor.acceptFailed(error) } else { context.fireErrorCaught(error) }
    }
}
