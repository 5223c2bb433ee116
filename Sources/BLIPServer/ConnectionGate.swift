import BLIPProtocol
import NIOCore

/// The first handler of every accepted connection, RPC or HTTP: what a connection may hold and for
/// how long, decided in one place for both protocols.
///
/// - **Admission:** the peer's credentials against the allow-lists (`SO_PEERCRED`; TCP peers have
///   none) and the connection against `--max-connections` (RPC and HTTP share it; refused peers
///   do not count). The protocol handler behind reads ``permitted`` and ``overLimit`` and answers
///   the refusal in its own protocol.
/// - **Timers:** the idle timer runs while nothing is in flight and no request is partly received
///   (`--idle-timeout`); the unfinished-request timer while one is (`--partial-frame-timeout`: an
///   incomplete frame, or an incomplete HTTP head or body), restarted by every read; the stall
///   timer while the peer does not take its answers (`--send-grace-period`), during which the
///   connection is not read.
/// - **Half-close:** an HTTP peer that closes its side is closed (its request in progress is
///   cancelled); an RPC peer's half-close goes on to the RPC handler, which answers the calls in
///   flight and then closes.
/// - **Shutdown:** the server closes every open connection through ``shutdown()``.
///
/// Everything runs on the connection's event loop; ``shutdown()`` hops onto it.
final class ConnectionGate: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: every field is touched only on `eventLoop`.
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// For log lines: `conn 3 …`.
    let id: Int
    let role: Acceptor.Role
    private let server: ServerContext
    private let eventLoop: EventLoop
    private var context: ChannelHandlerContext?

    /// Whether the peer passed the allow-lists.
    private(set) var permitted = true
    /// Past `--max-connections`: the protocol handler refuses the peer and closes.
    private(set) var overLimit = false
    /// Counted against `--max-connections`.
    private var counted = false
    /// Why the connection closed (or is closing), for the close's log line.
    private(set) var closeReason = "peer closed the connection"
    private(set) var isClosing = false

    /// Set by the protocol handler: answers every call of the connection still in flight with
    /// the error (shutdown's grace period is over) and cancels it in the engine.
    var abandonCalls: ((RPCError) -> Void)?

    /// A request is partly received (bytes of it read, the rest not yet).
    private var receiving = false
    /// Calls of this connection not yet answered.
    private var callsInFlight = 0
    private var idleTimer: Scheduled<Void>?
    private var unfinishedTimer: Scheduled<Void>?
    private var stallTimer: Scheduled<Void>?

    init(id: Int, role: Acceptor.Role, server: ServerContext, eventLoop: EventLoop) {
        self.id = id
        self.role = role
        self.server = server
        self.eventLoop = eventLoop
    }

    private var configuration: ServerConfiguration { server.configuration }

    /// Whether the connection holds work the daemon must not exit under (`--idle-exit`): an RPC
    /// connection while it is open, an HTTP one while a request is received or answered.
    private var keepsDaemonUp: Bool { role == .rpc || receiving || callsInFlight > 0 }

    // MARK: What the protocol handler reports

    /// The protocol's view after it handled what arrived or what it answered: whether a request
    /// is partly received, and how many calls are in flight (`nil`: unchanged).
    func report(receiving: Bool? = nil, callsInFlight: Int? = nil) {
        if let receiving { self.receiving = receiving }
        if let callsInFlight { self.callsInFlight = callsInFlight }
        rearm()
    }

    /// Closes the connection (once); `reason` goes to the log.
    func close(_ reason: String) {
        guard let context, !isClosing else { return }
        isClosing = true
        closeReason = reason
        context.close(promise: nil)
    }

    /// Marks the connection closing with `reason`, for a close the protocol handler makes itself
    /// (after writing a last answer).
    func closing(_ reason: String) {
        guard !isClosing else { return }
        isClosing = true
        closeReason = reason
    }

    /// The peer does not take its answers (a protocol-specific bound such as the RPC side's frame
    /// count): closes the connection unless it catches up within `--send-grace-period`.
    func peerFallingBehind(_ describe: @escaping () -> String) {
        guard stallTimer == nil else { return }
        let grace = configuration.sendGracePeriod
        stallTimer = eventLoop.scheduleTask(in: TimeAmount(grace)) {
            self.stallTimer = nil
            self.close("client stopped reading: \(describe()) not taken for \(elapsedText(grace))")
        }
    }

    /// The peer caught up: the stall timer stops (unless the socket is still not writable).
    func peerCaughtUp() {
        guard context?.channel.isWritable ?? false else { return }
        stallTimer?.cancel()
        stallTimer = nil
    }

    /// Answers the calls still in flight with `reason` (shutdown's grace period is over). From
    /// any thread; the future completes once they are answered.
    func abandonCalls(_ reason: RPCError) -> EventLoopFuture<Void> {
        eventLoop.submit { self.abandonCalls?(reason) }
    }

    /// Closes the connection: the server is shutting down. From any thread; the future completes
    /// once the connection is closed.
    func shutdown() -> EventLoopFuture<Void> {
        eventLoop.flatSubmit {
            guard let channel = self.context?.channel else { return self.eventLoop.makeSucceededVoidFuture() }
            self.close("the server is shutting down")
            return channel.closeFuture
        }
    }

    // MARK: Channel events

    func channelActive(context: ChannelHandlerContext) {
        self.context = context
        let peer = PeerCredentials.of(context.channel)
        let lists = (uids: configuration.allowedUIDs, gids: configuration.allowedGIDs)
        // TCP peers have no credentials: the allow-lists bind Unix peers (HTTP over TCP has its token).
        permitted = peer?.isAllowed(uids: lists.uids, gids: lists.gids)
            ?? (role == .http || (lists.uids == nil && lists.gids == nil))
        server.register(self)
        if permitted {
            counted = server.admitCounted()
            overLimit = !counted
            if overLimit {
                server.log("refused \(role == .http ? "an HTTP" : "a") connection: \(configuration.maxConnections) already open (--max-connections)")
            }
        }
        // HTTP connections come and go with every probe and scrape: only their unusual ends are logged.
        if !overLimit, role == .rpc || !permitted {
            server.log("conn \(id): open\(role == .http ? " (HTTP)" : "") (\(peer.map(String.init(describing:)) ?? "peer unknown"))\(permitted ? "" : ", not in --allow-uid/--allow-gid: its first request is refused and the connection closed")")
        }
        rearm()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !isClosing else { return }
        // Bytes arrived: a request has begun. The protocol's handlers say otherwise (through
        // `report`) once they have a whole one.
        receiving = true
        context.fireChannelRead(data)
        rearm()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if role == .http, let event = event as? ChannelEvent, event == .inputClosed {
            close(callsInFlight > 0 ? "the HTTP client closed its side mid-request; its call is cancelled" : "peer closed the connection")
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// Over the outgoing bound (the write buffer's high-water mark) the connection is not read — a
    /// client that does not take its answers gets no more work done for it — and is closed unless
    /// it drains within `--send-grace-period`; reading resumes once it drains.
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        context.channel.setOption(ChannelOptions.autoRead, value: writable).whenFailure { _ in }
        if writable {
            context.read()
            peerCaughtUp()
        } else {
            peerFallingBehind { "answers beyond \(self.configuration.maxQueuedBytes) bytes" }
        }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.fireErrorCaught(error)
        close("connection error: \(error)".bounded(512))
    }

    func channelInactive(context: ChannelHandlerContext) {
        isClosing = true
        for timer in [idleTimer, unfinishedTimer, stallTimer] { timer?.cancel() }
        receiving = false
        callsInFlight = 0
        server.closed(self, counted: counted)
        context.fireChannelInactive()
        abandonCalls = nil  // the protocol handler's closure holds it
        self.context = nil
    }

    // MARK: Timers

    private func rearm() {
        guard !isClosing else { return }
        server.setKeepsDaemonUp(self, keepsDaemonUp)
        unfinishedTimer?.cancel()
        unfinishedTimer = nil
        idleTimer?.cancel()
        idleTimer = nil
        if receiving {
            let limit = configuration.partialFrameTimeout
            unfinishedTimer = eventLoop.scheduleTask(in: TimeAmount(limit)) {
                self.close("peer stalled mid-\(self.role == .http ? "request" : "frame") for more than \(elapsedText(limit)) (--partial-frame-timeout)")
            }
        } else if callsInFlight == 0, let idle = configuration.idleTimeout {
            idleTimer = eventLoop.scheduleTask(in: TimeAmount(idle)) {
                self.close("idle for \(elapsedText(idle)) with no call in flight (--idle-timeout)")
            }
        }
    }
}
