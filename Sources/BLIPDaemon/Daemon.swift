import ArgumentParser
import BLIPCaptionService
import BLIPEngine
import BLIPProtocol
import CPUFeatures
import BLIPServer
import Foundation
import Glibc

/// The daemon: one linear start-up function (``run()``) over the service `makeService` builds —
/// the engine in `blip-captiond`, a fake in the tests' `blip-captiond-fake`, which so runs exactly
/// this start-up, signal handling, reload and exit.
public struct Daemon: Sendable {
    public let options: DaemonOptions
    /// Builds the service from the options (at start-up and on every reload).
    public let makeService: @Sendable (DaemonOptions) throws -> any CaptionService

    public init(options: DaemonOptions, makeService: @escaping @Sendable (DaemonOptions) throws -> any CaptionService) {
        self.options = options
        self.makeService = makeService
    }

    /// The start-up, serving, and the exit: parse (done) → load → listen → warm up → `READY=1` →
    /// serve → `STOPPING=1`. Returns when the server has drained.
    /// - Throws: `ExitCode` for every failure, after one log line and `STOPPING=1` with the reason.
    public func run() throws {
        let log = StandardErrorLog()
        let notifier = SystemdNotifier.systemd
        // Before any engine code runs: the engine is built for AVX2 + FMA (CPUFeatures).
        if let problem = CPUFeatures.engineProblem() {
            log("cannot start: \(problem)", level: .error)
            notifier.notify("STOPPING=1\nSTATUS=cannot start: " + problem)
            throw ExitCode(1)
        }
        if let failure = BLASRuntime.reexecIfNeeded(for: options.precision) { log(failure, level: .warning) }
        let signals = ShutdownSignals()
        let reloads = ReloadSignal()
        signal(SIGPIPE, SIG_IGN)
        WeightsFault.install()

        /// Every failed start-up ends here: STOPPING=1 and the reason in STATUS= and the log.
        func fail(_ what: String, _ error: any Error) -> ExitCode {
            log("\(what): \(error)", level: .error)
            notifier.notify("STOPPING=1\nSTATUS=" + "\(what): \(error)".replacingOccurrences(of: "\n", with: " "))
            return ExitCode.failure
        }

        // 1. Load the model. From step 4 on the server holds the only reference to the service (a
        // reload then frees the replaced model once its last call finishes): `loaded` is emptied
        // when it is handed over.
        notifier.status("loading model \(options.modelDirectory ?? "(default location)")…")
        log("loading model \(options.modelDirectory ?? "(default location)")")
        let loadStart = ContinuousClock.now
        var loaded: (any CaptionService)?
        do { loaded = try loadService() } catch { throw fail("loading the model failed", error) }
        // The model is reached through `loaded` each time, never bound to a local: this function
        // runs until shutdown, and a local would keep the first model alive past every reload
        // (ReloadMemoryTests).
        // Which file was read (a folder may hold model.safetensors and pytorch_model.bin) and its revision.
        let loadedFrom = (loaded as? EngineCaptionService).map { ": \($0.captioner.model.weightsPath), revision \($0.captioner.model.revision)" } ?? ""
        let plan = (loaded as? EngineCaptionService)?.captioner.model.precision
        log("model loaded in \(milliseconds(since: loadStart)) ms (precision \(options.precision.rawValue)\(plan.map { " on \($0.instructionPath)" } ?? ""), \(BLASRuntime.threads) engine threads)\(loadedFrom)")
        if let warning = plan?.warning { log(warning, level: .warning) }
        if let released = (loaded as? EngineCaptionService)?.captioner.model.releasedWeightBytes, released > 0 {
            log("\(released >> 20) MiB of float32 weights given back: their \(options.precision.rawValue) copies replace them")
        }
        let fileWatch = ModelFileWatch { log($0, level: .warning) }
        fileWatch.watch((loaded as? EngineCaptionService)?.captioner.model)

        // 2. Adopt systemd's sockets, or bind our own: every listener, HTTP's too, before READY=1.
        let listeners: [ListeningSocket]
        var httpListeners: [ListeningSocket] = []
        do {
            // Descriptors named http (`SystemdSockets.reserved`) serve the HTTP face.
            if let sockets = try ListeningSocket.adoptFromSystemd(log: { log.fromServer($0) }) {
                let adopted = sockets.captionAPI
                httpListeners = sockets.reserved[.http] ?? []
                listeners = adopted
                log("adopted \(adopted.count) socket(s) from systemd: \(adopted.map(\.name).joined(separator: ", "))")
            } else {
                listeners = [try ListeningSocket.bind(path: options.socket, mode: mode_t(options.socketMode, radix: 8)!)]
                log("listening on \(options.socket) (mode \(options.socketMode))")
            }
        } catch {
            throw fail("cannot listen", error)
        }
        if let httpListen = options.httpListen {
            do {
                httpListeners.append(try ListeningSocket.bind(httpAddress: httpListen))
            } catch {
                for listener in listeners + httpListeners { listener.close() }
                throw fail("cannot listen for HTTP on \(httpListen)", error)
            }
        }

        // 3. Warm up, so READY=1 means "a caption runs at full speed now".
        notifier.status("warming up…")
        let warmStart = ContinuousClock.now
        do { try loaded?.warmUp() } catch {
            for listener in listeners + httpListeners { listener.close() }
            throw fail("warm-up caption failed", error)
        }
        log("warm-up caption took \(milliseconds(since: warmStart)) ms")

        // 4. Serve until SIGTERM/SIGINT or idleness; the server sends READY=1 and STOPPING=1.
        var configuration = ServerConfiguration()
        configuration.maxFrameBytes = options.effectiveMaxFrameBytes
        configuration.idleTimeout = options.idleTimeout > 0 ? .milliseconds(Int64(options.idleTimeout * 1000)) : nil
        configuration.maxBufferedBytes = options.maxBufferedBytes
        configuration.sendGracePeriod = .milliseconds(Int64(options.sendGracePeriod * 1000))
        configuration.maxConnections = options.maxConnections
        configuration.partialFrameTimeout = .milliseconds(Int64(options.partialFrameTimeout * 1000))
        configuration.queueDepth = options.queueDepth
        configuration.gracePeriod = .milliseconds(Int64(options.gracePeriod * 1000))
        configuration.idleExit = options.idleExit.map { .milliseconds(Int64($0 * 1000)) }
        configuration.allowedUIDs = options.allowedUIDs.isEmpty ? nil : Set(options.allowedUIDs)
        configuration.allowedGIDs = options.allowedGIDs.isEmpty ? nil : Set(options.allowedGIDs)
        configuration.watchdogInterval = SystemdNotifier.watchdogInterval()
        configuration.notifier = notifier
        configuration.log = { log.fromServer($0) }
        if let watchdog = configuration.watchdogInterval {
            log("watchdog: pinging every \(watchdog.components.seconds * 500 + watchdog.components.attoseconds / 2_000_000_000_000_000) ms while the engine loop makes progress")
        }

        configuration.httpRequestTimeout = options.httpRequestTimeout > 0 ? .milliseconds(Int64(options.httpRequestTimeout * 1000)) : nil
        if let httpTokenFile = options.httpTokenFile {
            do {
                let text = try String(contentsOfFile: httpTokenFile, encoding: .utf8)
                guard let token = text.split(whereSeparator: \.isNewline).first.map(String.init), !token.isEmpty else {
                    throw ValidationError("\(httpTokenFile) is empty")
                }
                configuration.httpToken = token
            } catch {
                throw fail("cannot read --http-token-file \(httpTokenFile)", error)
            }
        }
        let server: CaptionServer
        weak var firstModel: BlipModel?
        do {
            guard let service = loaded.take() else { throw ExitCode.failure }
            firstModel = (service as? EngineCaptionService)?.captioner.model
            server = CaptionServer(service: service, listeners: listeners, configuration: configuration, httpListeners: httpListeners)
        }
        signals.attach(server)
        reloads.attach { [self] in reload(server, notifier: notifier, log: log, fileWatch: fileWatch) }
        // The weights are the mapped file's pages until they are copied into owned memory: that
        // copy runs beside the serving (READY does not wait for it).
        let copyFailed = LockedState(false)
        // Weakly: a reload may replace the model before the copy starts.
        if firstModel != nil {
            let delay = options.testWeightsCopyDelay
            let copier = Thread { [weak firstModel] in
                if delay > 0 { Thread.sleep(forTimeInterval: delay) }
                guard let model = firstModel else { return }
                let start = ContinuousClock.now
                do {
                    let bytes = try model.ownWeights()
                    log("weights copied into memory the daemon owns (\(bytes >> 20) MiB in \(milliseconds(since: start)) ms): changes to \(model.weightsPath) no longer affect the running model")
                } catch {
                    log("\(error); exiting with status \(WeightsFault.exitStatus) for systemd to restart the daemon on the file as it is now", level: .error)
                    copyFailed.withLock { $0 = true }
                    server.shutdown()
                }
            }
            copier.name = "weights-copy"
            copier.start()
        }
        let reason = server.run()
        log("exiting (\(reason))")
        if copyFailed.withLock({ $0 }) { throw ExitCode(WeightsFault.exitStatus) }
        if case .failed = reason { throw ExitCode.failure }
    }
}

extension Daemon {
    func loadService() throws -> any CaptionService {
        try makeService(options)
    }

    /// SIGHUP: loads and warms up the model folder again while the old model keeps serving,
    /// then swaps it in (calls in flight finish on the old one). A reload that fails keeps the
    /// old model and says why. Peak memory holds both models for the duration.
    func reload(_ server: CaptionServer, notifier: SystemdNotifier, log: StandardErrorLog, fileWatch: ModelFileWatch) {
        guard !server.isStopping else {
            log("SIGHUP while stopping, ignoring", level: .warning)
            return
        }
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let monotonic = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
        notifier.notify("RELOADING=1\nMONOTONIC_USEC=\(monotonic)\nSTATUS=reloading model \(options.modelDirectory ?? "(default location)")…")
        log("SIGHUP: reloading model \(options.modelDirectory ?? "(default location)")")
        let start = ContinuousClock.now
        do {
            let service = try loadService()
            try service.warmUp()
            try (service as? EngineCaptionService)?.captioner.model.ownWeights()
            server.replaceService(service)
            fileWatch.watch((service as? EngineCaptionService)?.captioner.model)
            let model = (service as? EngineCaptionService)?.captioner.model
            log("reloaded and warmed up in \(milliseconds(since: start)) ms\(model.map { ": \($0.weightsPath), revision \($0.revision)" } ?? "")")
            notifier.notify("READY=1\nSTATUS=" + server.statusLine)
        } catch {
            log("reload failed: \(error); still serving the previous model", level: .warning)
            notifier.notify("READY=1\nSTATUS=" + "reload failed (\(error)); serving the previous model".replacingOccurrences(of: "\n", with: " "))
        }
    }
}

/// Whole milliseconds since `start`, for log lines.
private func milliseconds(since start: ContinuousClock.Instant) -> Int64 {
    let (seconds, attoseconds) = (ContinuousClock.now - start).components
    return seconds * 1000 + attoseconds / 1_000_000_000_000_000
}

