import BLIPProtocol
import Foundation
import Glibc
import NIOCore
import NIOPosix

/// The daemon's server: one SwiftNIO event loop owns every socket (accepting on the listening
/// sockets, reading frames, writing answers); Health and Info are answered at once, captions go to
/// the engine (`CaptionService`) through the bounded ``Scheduler``; a housekeeping thread keeps
/// systemd informed; ``shutdown()`` drains cleanly.
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
    private let heartbeatStopped = LockedState(false)
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
        context.scheduler.stopAccepting()
        exitSignal.signal()
    }

    /// Serves later calls with `service` (a reloaded model): a call already running finishes
    /// on the previous service; queued calls and Info use the new one. Safe from any thread.
    /// - Parameter service: The new service, already loaded and warmed up.
    public func replaceService(_ service: any CaptionService) {
        context.scheduler.replaceService(service)
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
        let heartbeat = Thread { [self] in runHeartbeat() }
        heartbeat.name = "heartbeat"
        heartbeat.start()

        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let httpSockets = httpListeners
        let acceptors = listeners.map { Acceptor(listener: $0, server: context, eventLoop: group.next()) }
            + httpSockets.map { Acceptor(listener: $0, server: context, eventLoop: group.next(), role: .http) }
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
                heartbeatStopped.withLock { $0 = true }
                try? group.syncShutdownGracefully()
                notifier.notify("STOPPING=1\nSTATUS=" + why)
                return .failed(why)
            }
        }
        if !httpSockets.isEmpty {
            context.log("HTTP on \(httpSockets.map(\.name).joined(separator: ", ")): /healthz /readyz /metrics /v1/models /v1/chat/completions")
        }

        notifier.notify("READY=1\nSTATUS=" + context.statusLine())
        context.log("serving on \(listeners.map(\.name).joined(separator: ", ")) (queue depth \(context.scheduler.capacity), max frame \(configuration.maxFrameBytes) bytes)")

        exitSignal.wait()
        let reason = exitReason.withLock { $0 } ?? .shutdownRequested

        // Drain: stop accepting, let calls in flight finish within the grace period. New
        // connections stay in the kernel's queue: under socket activation systemd hands them to
        // the next instance.
        context.beginDraining()
        context.scheduler.stopAccepting()
        for acceptor in acceptors { acceptor.stop() }
        for listener in listeners + httpSockets { listener.close() }
        notifier.notify("STOPPING=1\nSTATUS=" + context.statusLine())
        context.log("stopping (\(reason)): \(context.scheduler.depth) call(s) in flight, grace period \(elapsedText(configuration.gracePeriod))")
        if !context.scheduler.waitUntilIdle(before: .now + configuration.gracePeriod) {
            let unavailable = RPCError(code: .unavailable, message: "the server shut down before this call finished; retry on a new connection")
            let abandoned = context.scheduler.abandonAll(unavailable)
            context.log("grace period over: answering \(abandoned.count) call(s) UNAVAILABLE")
            for call in abandoned { call.finish(.failure(unavailable)) }
        }

        // Close the connections and give their readers a moment to wind down.
        for connection in context.openConnections { connection.shutdown() }
        let closeDeadline = ContinuousClock.now + .seconds(1)
        while !context.openConnections.isEmpty, ContinuousClock.now < closeDeadline {
            Thread.sleep(forTimeInterval: 0.005)
        }
        heartbeatStopped.withLock { $0 = true }
        try? group.syncShutdownGracefully()
        context.log("stopped (\(reason)): \(context.statistics.captionsServed) captions served")
        return reason
    }

    // MARK: Housekeeping

    /// Wakes every `tickInterval`: pings the watchdog while the engine makes progress, updates `STATUS=` at most every
    /// `statusInterval`, and ends the server after `idleExit` without connections.
    private func runHeartbeat() {
        let configuration = context.configuration
        var tick = configuration.tickInterval
        if let watchdog = configuration.watchdogInterval { tick = min(tick, watchdog / 4) }
        var lastPing: ContinuousClock.Instant?
        var lastStatusTime = ContinuousClock.now
        var lastStatus = context.statusLine()
        var wedgedReported = false

        while !heartbeatStopped.withLock({ $0 }) {
            Thread.sleep(forTimeInterval: Double(tick.microseconds) / 1e6)
            let now = ContinuousClock.now

            if let watchdog = configuration.watchdogInterval {
                if context.scheduler.isMakingProgress(within: watchdog, now: now) {
                    if lastPing.map({ now - $0 >= watchdog / 2 }) ?? true {
                        configuration.notifier.notify("WATCHDOG=1")
                        lastPing = now
                    }
                    wedgedReported = false
                } else if !wedgedReported {
                    context.log("the engine made no progress for \(elapsedText(watchdog)): withholding watchdog pings")
                    wedgedReported = true
                }
            }

            // While serving only: once draining, STOPPING=1 carries the last status.
            if !context.isDraining, now - lastStatusTime >= configuration.statusInterval {
                let status = context.statusLine()
                if status != lastStatus {
                    configuration.notifier.status(status)
                    lastStatus = status
                    lastStatusTime = now
                }
            }

            if let idleExit = configuration.idleExit, !context.isDraining,
               let idle = context.idleDuration(now: now), idle >= idleExit, context.scheduler.depth == 0 {
                context.log("no connection for \(elapsedText(idle)): exiting (--idle-exit)")
                requestExit(.idle)
            }
        }
    }
}
