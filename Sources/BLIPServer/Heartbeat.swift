import NIOCore

/// The server's housekeeping, a repeated task on its event loop (no thread of its own): every
/// `tickInterval` it pings systemd's watchdog while the engine makes progress, updates `STATUS=`
/// at most every `statusInterval` while serving, and asks for the idle exit after `idleExit`
/// with nothing held up.
///
/// Running on the event loop is deliberate: a loop that stops turning stops the pings too, and
/// systemd restarts a daemon whose sockets no longer answer.
final class Heartbeat: @unchecked Sendable {
    // @unchecked: the fields below are touched only by the repeated task, on its loop.
    private let server: ServerContext
    private let requestIdleExit: @Sendable () -> Void
    private var lastPing: ContinuousClock.Instant?
    private var lastStatusTime = ContinuousClock.now
    private var lastStatus: String
    private var wedgedReported = false

    init(server: ServerContext, requestIdleExit: @escaping @Sendable () -> Void) {
        self.server = server
        self.requestIdleExit = requestIdleExit
        lastStatus = server.statusLine()
    }

    /// Starts ticking on `loop`; cancel the task to stop.
    func start(on loop: any EventLoop) -> RepeatedTask {
        let configuration = server.configuration
        var tick = configuration.tickInterval
        if let watchdog = configuration.watchdogInterval { tick = min(tick, watchdog / 4) }
        return loop.scheduleRepeatedTask(initialDelay: TimeAmount(tick), delay: TimeAmount(tick)) { _ in self.tick() }
    }

    private func tick() {
        let configuration = server.configuration
        let now = ContinuousClock.now
        if let watchdog = configuration.watchdogInterval {
            if server.admission.isMakingProgress(within: watchdog, now: now) {
                if lastPing.map({ now - $0 >= watchdog / 2 }) ?? true {
                    configuration.notifier.notify("WATCHDOG=1")
                    lastPing = now
                }
                wedgedReported = false
            } else if !wedgedReported {
                server.log("the engine made no progress for \(elapsedText(watchdog)): withholding watchdog pings")
                wedgedReported = true
            }
        }

        // While serving only: once draining, STOPPING=1 carries the last status.
        if !server.isDraining, now - lastStatusTime >= configuration.statusInterval {
            let status = server.statusLine()
            if status != lastStatus {
                configuration.notifier.status(status)
                lastStatus = status
                lastStatusTime = now
            }
        }

        if let idleExit = configuration.idleExit, !server.isDraining,
           let idle = server.idleDuration(now: now), idle >= idleExit, server.admission.depth == 0 {
            server.log("no connection for \(elapsedText(idle)): exiting (--idle-exit)")
            requestIdleExit()
        }
    }
}
