import BLIPProtocol
import Foundation
import Glibc

/// The daemon's serving loop: accepts connections on the listening sockets, answers Health
/// and Info at once, queues captions for the inference workers, keeps systemd informed,
/// and drains cleanly on ``shutdown()``.
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

        public var description: String {
            switch self {
            case .shutdownRequested: "shutdown requested"
            case .idle: "idle"
            }
        }
    }

    private let context: ServerContext
    private let listeners: [ListeningSocket]
    /// `shutdown()` writes a byte here to wake the accept loop's poll.
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let exitReason = LockedState<ExitReason?>(nil)
    private let heartbeatStopped = LockedState(false)

    /// - Parameters:
    ///   - service: The captioning engine (loaded and warmed up already).
    ///   - listeners: Listening sockets, adopted from systemd or bound; the server closes them
    ///     when it stops accepting.
    ///   - configuration: Limits, timing, access control, notifier and log.
    public init(service: any CaptionService, listeners: [ListeningSocket], configuration: ServerConfiguration) {
        self.context = ServerContext(service: service, configuration: configuration)
        self.listeners = listeners
        var fds: [Int32] = [0, 0]
        // (pipe2 and accept4 are GNU extensions Glibc's Swift module does not import.)
        if pipe(&fds) == 0 {
            for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
            _ = fcntl(fds[1], F_SETFL, O_NONBLOCK)
        }
        wakeRead = fds[0]
        wakeWrite = fds[1]
    }

    deinit {
        Glibc.close(wakeRead)
        Glibc.close(wakeWrite)
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
        if first {
            var byte: UInt8 = 1
            _ = write(wakeWrite, &byte, 1)
        }
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

        notifier.notify("READY=1\nSTATUS=" + context.statusLine())
        context.log("serving on \(listeners.map(\.name).joined(separator: ", ")) (queue depth \(context.scheduler.capacity), max frame \(configuration.maxFrameBytes) bytes)")

        acceptLoop()
        let reason = exitReason.withLock { $0 } ?? .shutdownRequested

        // Drain: stop accepting, let calls in flight finish within the grace period.
        context.beginDraining()
        context.scheduler.stopAccepting()
        for listener in listeners { listener.close() }
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
        context.log("stopped (\(reason)): \(context.statistics.captionsServed) captions served")
        return reason
    }

    // MARK: Accepting

    private func acceptLoop() {
        var polled = listeners.map { pollfd(fd: $0.fileDescriptor, events: Int16(POLLIN), revents: 0) }
        polled.append(pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0))
        while exitReason.withLock({ $0 }) == nil {
            let ready = poll(&polled, nfds_t(polled.count), -1)
            if ready < 0 {
                if errno == EINTR { continue }
                context.log("poll failed: \(errnoText(errno)), shutting down")
                requestExit(.shutdownRequested)
                break
            }
            // Once exit is decided, leave new connections in the kernel's queue: under socket
            // activation systemd hands them to the next instance.
            guard exitReason.withLock({ $0 }) == nil else { break }
            for index in listeners.indices where polled[index].revents != 0 {
                accept(on: listeners[index])
            }
        }
    }

    private func accept(on listener: ListeningSocket) {
        let fd = Glibc.accept(listener.fileDescriptor, nil, nil)
        guard fd >= 0 else {
            if errno != EAGAIN && errno != EINTR && errno != ECONNABORTED {
                context.log("accept on \(listener.name) failed: \(errnoText(errno)), ignoring")
                // Avoid spinning on a persistent error such as EMFILE.
                Thread.sleep(forTimeInterval: 0.05)
            }
            return
        }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        // A peer that stops reading must not wedge the worker that writes its response.
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        // Reads wake up at least this often so a half-sent frame can time out (Connection.serve).
        let stall = context.configuration.partialFrameTimeout
        let wake = max(min(stall / 4, .seconds(1)), .milliseconds(10))
        var readTimeout = timeval(tv_sec: Int(wake.components.seconds), tv_usec: Int(wake.components.attoseconds / 1_000_000_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &readTimeout, socklen_t(MemoryLayout<timeval>.size))
        let limit = context.configuration.maxConnections
        if context.openConnections.count >= limit {
            Self.refuse(fd, RPCError(code: .resourceExhausted, message: "too many connections (\(limit) open, --max-connections); close idle ones or retry later"))
            context.log("refused a connection: \(limit) already open (--max-connections)")
            return
        }
        let connection = context.openConnection(fd: fd)
        let thread = Thread { connection.serve() }
        thread.name = "conn \(connection.id)"
        thread.start()
    }

    /// Answers a connection the server will not serve with one call-id-0 error, then closes it.
    private static func refuse(_ fd: Int32, _ error: RPCError) {
        if let frame = try? FrameEncoder().encode(Envelope.failure(callID: 0, error: error).encoded()) {
            _ = frame.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }
        Glibc.close(fd)
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

            if now - lastStatusTime >= configuration.statusInterval {
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
