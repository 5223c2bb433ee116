import BLIPProtocol
import Foundation
import Glibc
import NIOCore
import NIOPosix

/// The daemon's server: one SwiftNIO event loop owns every socket (accepting on the listening
/// sockets, gating each connection (``ConnectionGate``), reading frames and HTTP requests, writing
/// answers); Health and Info are answered at once, captions go to the engine (`CaptionService`)
/// through bounded ``Admission``; a repeated task on the loop (``Heartbeat``) keeps systemd
/// informed; ``shutdown()`` drains cleanly, every connection closed.
///
/// ```swift
/// let server = CaptionServer(service: service, listeners: sockets, configuration: configuration)
/// // from a signal handler: server.shutdown()
/// let reason = server.run()   // READY=1 … STOPPING=1; returns when drained
/// ```
public final class CaptionServer: Sendable {
    /// Why ``run()`` returned.
    public enum ExitReason: Sendable, Hashable, CustomStringConvertible {
        /// ``shutdown()`` was called (SIGTERM, SIGINT).
        case shutdownRequested
        /// No connection for `ServerConfiguration.idleExit`.
        case idle
        /// The server could not serve at all (a listener cannot be accepted on); `READY=1` was
        /// never sent. The text says why; the daemon exits non-zero.
        case failed(String)

        public var description: String {
            switch self {
            case .shutdownRequested: "shutdown requested"
            case .idle: "idle"
            case .failed(let why): "failed: \(why)"
            }
        }
    }

    private let context: ServerContext
    private let listeners: [ListeningSocket]
    private let httpListeners: [ListeningSocket]
    private let exitReason = LockedState<ExitReason?>(nil)
    /// Signalled when an exit reason is set.
    private let exitSignal = DispatchSemaphore(value: 0)

    /// - Parameters:
    ///   - service: The captioning engine (loaded and warmed up already).
    ///   - listeners: Listening sockets, adopted from systemd or bound; the server closes them
    ///     when it stops accepting.
    ///   - configuration: Limits, timing, access control, notifier and log.
    ///   - httpListeners: Listening sockets for the HTTP face (systemd's `FileDescriptorName=http`).
    public init(service: any CaptionService, listeners: [ListeningSocket], configuration: ServerConfiguration,
                httpListeners: [ListeningSocket] = []) {
        self.context = ServerContext(service: service, configuration: configuration)
        self.listeners = listeners
        self.httpListeners = httpListeners
    }

    /// Asks ``run()`` to stop accepting, drain and return. Safe from any thread, any number of
    /// times.
    public func shutdown() {
        requestExit(.shutdownRequested)
    }

    private func requestExit(_ reason: ExitReason) {
        let first = exitReason.withLock { current -> Bool in
            guard current == nil else { return false }
            current = reason
            return true
        }
        guard first else { return }
        // Draining starts at once: from here on Health says NOT_SERVING and new captions get
        // UNAVAILABLE, whenever run() gets to the rest of the shutdown.
        context.beginDraining()
        context.admission.stopAccepting()
        exitSignal.signal()
    }

    /// Serves later calls with `service` (a reloaded model): a call already running finishes
    /// on the previous service; queued calls and Info use the new one. Safe from any thread.
    /// - Parameter service: The new service, already loaded and warmed up.
    public func replaceService(_ service: any CaptionService) {
        context.admission.replaceService(service)
        let modelID = service.describe().modelID
        context.log("now serving \(modelID.isEmpty ? "the reloaded model" : modelID)")
    }

    /// Whether a shutdown (or idle exit) has begun.
    public var isStopping: Bool { exitReason.withLock { $0 != nil } }

    /// The `STATUS=` line describing the server now ("serving: 12 captions served, …").
    public var statusLine: String { context.statusLine() }

    /// Serves until ``shutdown()`` or idleness: sends `READY=1`, accepts connections, then
    /// drains (calls in flight get `gracePeriod`, the rest `UNAVAILABLE`), sends `STOPPING=1`
    /// and returns. Call once.
    public func run() -> ExitReason {
        let configuration = context.configuration
        let notifier = configuration.notifier
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let httpSockets = httpListeners
        let acceptors = listeners.map { Acceptor(listener: $0, server: context, eventLoop: loop) }
            + httpSockets.map { Acceptor(listener: $0, server: context, eventLoop: loop, role: .http) }
        for (listener, acceptor) in zip(listeners + httpSockets, acceptors) {
            do {
                try acceptor.start()
            } catch {
                // Nothing was promised yet: no READY=1, and the caller exits non-zero.
                let why = "cannot accept on \(listener.name): \(error)"
                context.log(why)
                requestExit(.failed(why))
                for acceptor in acceptors { acceptor.stop() }
                for listener in listeners + httpSockets { listener.close() }
                try? group.syncShutdownGracefully()
                notifier.notify("STOPPING=1\nSTATUS=" + why)
                return .failed(why)
            }
        }
        if !httpSockets.isEmpty {
            context.log("HTTP on \(httpSockets.map(\.name).joined(separator: ", ")): /healthz /readyz /metrics /v1/models /v1/chat/completions")
        }

        notifier.notify("READY=1\nSTATUS=" + context.statusLine())
        context.log("serving on \(listeners.map(\.name).joined(separator: ", ")) (queue depth \(context.admission.capacity), max frame \(configuration.maxFrameBytes) bytes)")
        let heartbeat = Heartbeat(server: context, requestIdleExit: { [self] in requestExit(.idle) }).start(on: loop)

        exitSignal.wait()
        let reason = exitReason.withLock { $0 } ?? .shutdownRequested

        // Drain: stop accepting, let calls in flight finish within the grace period. New
        // connections stay in the kernel's queue: under socket activation systemd hands them to
        // the next instance.
        context.beginDraining()
        context.admission.stopAccepting()
        for acceptor in acceptors { acceptor.stop() }
        for listener in listeners + httpSockets { listener.close() }
        heartbeat.cancel()
        notifier.notify("STOPPING=1\nSTATUS=" + context.statusLine())
        context.log("stopping (\(reason)): \(context.admission.depth) call(s) in flight, grace period \(elapsedText(configuration.gracePeriod))")
        let idle = loop.makePromise(of: Bool.self)
        context.admission.whenIdle { idle.succeed(true) }
        loop.scheduleTask(in: TimeAmount(configuration.gracePeriod)) { idle.succeed(false) }
        if (try? idle.futureResult.wait()) != true {
            let unavailable = RPCError(code: .unavailable, message: "the server shut down before this call finished; retry on a new connection")
            context.log("grace period over: answering \(context.admission.depth) call(s) UNAVAILABLE")
            _ = try? EventLoopFuture.andAllComplete(context.openConnections.map { $0.abandonCalls(unavailable) }, on: loop).wait()
        }

        // Close every connection, RPC and HTTP, and wait (at most a second) until they are closed.
        let closed = EventLoopFuture.andAllComplete(context.openConnections.map { $0.shutdown() }, on: loop)
        let windDown = loop.makePromise(of: Void.self)
        closed.cascade(to: windDown)
        loop.scheduleTask(in: .seconds(1)) { windDown.succeed(()) }
        try? windDown.futureResult.wait()
        try? group.syncShutdownGracefully()
        context.log("stopped (\(reason)): \(context.statistics.captionsServed) captions served")
        return reason
    }
}
