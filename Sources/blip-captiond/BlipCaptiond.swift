import ArgumentParser
import BLIPCaptionService
import BLIPEngine
import BLIPProtocol
import CPUFeatures
import BLIPServer
import Foundation
import Glibc

/// `blip-captiond`: the socket-activated captioning daemon.
///
/// Start-up is one linear function (``run()``): parse → load the model → adopt or bind the
/// socket → warm up → `READY=1` → serve → `STOPPING=1` → exit.
@main
struct BlipCaptiond: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "blip-captiond",
        abstract: "Serve BLIP image captions over a Unix socket (length-prefixed protobuf, blip.v1).",
        discussion: """
            Under systemd (blip-captiond.socket + blip-captiond.service) the daemon adopts the \
            listening socket systemd passes; started by hand it binds --socket itself. SIGTERM or \
            SIGINT drains: calls in flight get --grace-period seconds, the rest UNAVAILABLE. \
            SIGHUP reloads the model folder without dropping the socket.
            """,
        version: ReleaseVersion.line(for: "blip-captiond")
    )

    @Option(help: ArgumentHelp("The model folder (config.json, model.safetensors, vocab.txt). Default: $BLIP_MODEL, else the engine's model discovery.", valueName: "dir"))
    var model: String?

    @Option(help: ArgumentHelp("Socket to bind when systemd passes none (LISTEN_FDS unset).", valueName: "path"))
    var socket = "/run/blip-captiond/blip-captiond.sock"

    @Option(help: ArgumentHelp("Permissions of a socket this process binds, in octal.", valueName: "mode"))
    var socketMode = "0660"

    @Option(help: "Caption calls waiting or running at once; one more gets RESOURCE_EXHAUSTED.")
    var queueDepth = 16

    @Option(help: "Prompts the engine loop works on at once (encoding or decoding): their decode steps run together, each weight read once for all (1 = strictly one at a time).")
    var maxBatch = 4

    @Option(help: ArgumentHelp("Images encoded side by side at most when several wait, each lane with its share of the threads (default: one lane per engine thread).", valueName: "n"))
    var encodeLanes: Int?

    @Option(help: ArgumentHelp("MiB of image features kept so that another prompt for the same image skips the encoder (0 turns the cache off).", valueName: "MiB"))
    var featureCacheMb = 256

    @Option(help: ArgumentHelp("Largest frame a client may send, in bytes (docs/protocol.md §1). Default: 32 MiB + 256 KiB, or --max-image-bytes + 256 KiB when that is more (the largest image must fit with its envelope).", valueName: "bytes"))
    var maxFrameBytes: Int?

    @Option(help: ArgumentHelp("Serve HTTP too — /healthz, /readyz, /metrics (Prometheus), /v1/models, /v1/chat/completions (OpenAI-compatible) — on HOST:PORT (e.g. 127.0.0.1:8080) or a Unix socket path. Off by default; systemd can pass a socket named http instead.", valueName: "address"))
    var httpListen: String?

    @Option(help: ArgumentHelp("A file whose first line is a token every HTTP request but /healthz and /readyz must send as Authorization: Bearer TOKEN (for a port reachable beyond this host).", valueName: "path"))
    var httpTokenFile: String?

    @Option(help: ArgumentHelp("Seconds an HTTP caption may take before it is answered 504, unless its request sets X-Request-Timeout (seconds); 0 = no server deadline.", valueName: "seconds"))
    var httpRequestTimeout: Double = 120

    @Option(help: ArgumentHelp("Seconds a connection with no call in flight and no half-sent frame stays open (0 = for ever).", valueName: "seconds"))
    var idleTimeout: Double = 300

    @Option(help: ArgumentHelp("Bytes of half-received frames all connections together may hold; a read past it is refused with RESOURCE_EXHAUSTED and its connection closed.", valueName: "bytes"))
    var maxBufferedBytes = ServerConfiguration().maxBufferedBytes

    @Option(help: ArgumentHelp("Seconds a client may leave answers unread beyond its outgoing queue before it is disconnected and its calls cancelled.", valueName: "seconds"))
    var sendGracePeriod: Double = 10

    @Option(help: "Connections open at once; one more is refused with RESOURCE_EXHAUSTED.")
    var maxConnections = ServerConfiguration().maxConnections

    @Option(help: ArgumentHelp("Seconds a client may leave a frame half-sent before its connection is closed.", valueName: "seconds"))
    var partialFrameTimeout: Double = 30

    @Option(help: ArgumentHelp("Seconds calls in flight may run after SIGTERM before they are answered UNAVAILABLE.", valueName: "seconds"))
    var gracePeriod: Double = 10

    @Option(help: ArgumentHelp("Exit cleanly after this many seconds with no connection (systemd starts the daemon again on the next one).", valueName: "seconds"))
    var idleExit: Double?

    @Option(name: .customLong("allow-uid"), help: ArgumentHelp("Only peers with this uid (SO_PEERCRED) may call; repeatable. Others get PERMISSION_DENIED.", valueName: "uid"))
    var allowedUIDs: [UInt32] = []

    @Option(name: .customLong("allow-gid"), help: ArgumentHelp("Only peers with this gid may call; repeatable. A peer matching --allow-uid or --allow-gid is let in.", valueName: "gid"))
    var allowedGIDs: [UInt32] = []

    @Option(help: "Largest image a request may carry, in bytes (checked before decoding).")
    var maxImageBytes = ImageLimits.default.maxBytes

    @Option(help: "Most pixels (width × height) an image may declare; checked from its header before decoding.")
    var maxPixels = ImageLimits.default.maxPixels

    @Option(help: "Most beams (and returned sequences) a request may ask for.")
    var maxBeams = 8

    /// The old, slow warm-up: a complete caption before READY=1 instead of the engine's cut-down one.
    @Flag(help: "Warm up with a complete caption of a 64×64 image (seconds on BLIP-large) instead of the quick warm-up (every stage once, on a few image tokens and 2 new tokens; docs/daemon.md).")
    var fullWarmUp = false

    @Option(help: ArgumentHelp("Precision decode steps read the decoder's weight matrices in: fp32 (identical to transformers) or bf16 (half the bytes per step: ~1.6× faster steps, small logit error; docs/performance.md).", valueName: "fp32|bf16"))
    var weights: WeightPrecision = .float32

    /// TEST HOOK: hold the weights in the mapped file this many seconds after READY before copying
    /// them into owned memory, so a test can truncate the file inside that window.
    @Option(name: .customLong("test-weights-copy-delay"), help: .hidden)
    var testWeightsCopyDelay: Double = 0

    /// TEST HOOK: serve ``TestHookService`` (no model) so tests can run this binary end to end.
    @Flag(name: .customLong("test-fake-service"), help: .hidden)
    var testFakeService = false

    /// Room for the envelope and the other request fields beside the largest image in a frame.
    static let envelopeAllowance = 256 << 10

    /// `--max-frame-bytes`, else the default raised to fit `--max-image-bytes` and its envelope.
    var effectiveMaxFrameBytes: Int {
        maxFrameBytes ?? max(ServerConfiguration().maxFrameBytes, maxImageBytes + Self.envelopeAllowance)
    }

    /// The model folder: `--model`, else `$BLIP_MODEL` (set by the unit), else `nil` (the
    /// engine's own discovery).
    var modelDirectory: String? {
        model ?? ProcessInfo.processInfo.environment["BLIP_MODEL"].flatMap { $0.isEmpty ? nil : $0 }
    }

    func validate() throws {
        guard mode_t(socketMode, radix: 8).map({ $0 <= 0o777 }) == true else {
            throw ValidationError("--socket-mode \(socketMode) is not an octal mode such as 0660")
        }
        guard maxImageBytes >= 1, maxPixels >= 1 else { throw ValidationError("--max-image-bytes and --max-pixels must be at least 1") }
        guard (1...64).contains(maxBeams) else { throw ValidationError("--max-beams must be between 1 and 64") }
        guard maxConnections >= 1 else { throw ValidationError("--max-connections must be at least 1") }
        guard partialFrameTimeout > 0, partialFrameTimeout.isFinite else { throw ValidationError("--partial-frame-timeout must be a positive number of seconds") }
        guard queueDepth >= 1 else { throw ValidationError("--queue-depth must be at least 1") }
        guard maxBatch >= 1 else { throw ValidationError("--max-batch must be at least 1") }
        if let encodeLanes, encodeLanes < 1 { throw ValidationError("--encode-lanes must be at least 1") }
        guard (0...(1 << 20)).contains(featureCacheMb) else { throw ValidationError("--feature-cache-mb must be between 0 and \(1 << 20)") }
        if let maxFrameBytes {
            guard maxFrameBytes >= 1024, maxFrameBytes <= Int(UInt32.max) else {
                throw ValidationError("--max-frame-bytes must be between 1024 and \(UInt32.max)")
            }
            guard maxFrameBytes >= maxImageBytes + Self.envelopeAllowance else {
                throw ValidationError("--max-frame-bytes \(maxFrameBytes) cannot carry an image of --max-image-bytes \(maxImageBytes) with its envelope; give at least \(maxImageBytes + Self.envelopeAllowance), or leave --max-frame-bytes out (it then follows --max-image-bytes)")
            }
        }
        guard effectiveMaxFrameBytes <= Int(UInt32.max) else { throw ValidationError("--max-image-bytes is too large for a frame (at most \(Int(UInt32.max) - Self.envelopeAllowance))") }
        guard httpRequestTimeout >= 0, httpRequestTimeout <= 86_400 else { throw ValidationError("--http-request-timeout must be between 0 and 86400 seconds (0: no server deadline)") }
        guard idleTimeout >= 0, idleTimeout.isFinite else { throw ValidationError("--idle-timeout must be ≥ 0 seconds (0 keeps idle connections)") }
        guard maxBufferedBytes >= 1 else { throw ValidationError("--max-buffered-bytes must be at least 1") }
        guard sendGracePeriod > 0, sendGracePeriod.isFinite else { throw ValidationError("--send-grace-period must be a positive number of seconds") }
        guard gracePeriod >= 0, gracePeriod.isFinite else { throw ValidationError("--grace-period must be ≥ 0 seconds") }
        if let idleExit, !(idleExit > 0 && idleExit.isFinite) {
            throw ValidationError("--idle-exit must be a positive number of seconds")
        }
    }

    func run() throws {
        let log = StandardErrorLog()
        let notifier = SystemdNotifier.systemd
        // Before any engine code runs: the engine is built for AVX2 + FMA (CPUFeatures).
        if let problem = CPUFeatures.engineProblem() {
            log("cannot start: \(problem)", level: .error)
            notifier.notify("STOPPING=1\nSTATUS=cannot start: " + problem)
            throw ExitCode(1)
        }
        if let failure = BLASRuntime.reexecWithBetterKernelIfNeeded() { log(failure, level: .warning) }
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
        notifier.status("loading model \(modelDirectory ?? "(default location)")…")
        log("loading model \(modelDirectory ?? "(default location)")")
        let loadStart = ContinuousClock.now
        var loaded: (any CaptionService)?
        do { loaded = try loadService() } catch { throw fail("loading the model failed", error) }
        log("model loaded in \(milliseconds(since: loadStart)) ms (decoder weights \(weights.rawValue), \(BLASRuntime.threads) engine threads)")
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
                listeners = [try ListeningSocket.bind(path: socket, mode: mode_t(socketMode, radix: 8)!)]
                log("listening on \(socket) (mode \(socketMode))")
            }
        } catch {
            throw fail("cannot listen", error)
        }
        if let httpListen {
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
        configuration.maxFrameBytes = effectiveMaxFrameBytes
        configuration.idleTimeout = idleTimeout > 0 ? .milliseconds(Int64(idleTimeout * 1000)) : nil
        configuration.maxBufferedBytes = maxBufferedBytes
        configuration.sendGracePeriod = .milliseconds(Int64(sendGracePeriod * 1000))
        configuration.maxConnections = maxConnections
        configuration.partialFrameTimeout = .milliseconds(Int64(partialFrameTimeout * 1000))
        configuration.queueDepth = queueDepth
        configuration.gracePeriod = .milliseconds(Int64(gracePeriod * 1000))
        configuration.idleExit = idleExit.map { .milliseconds(Int64($0 * 1000)) }
        configuration.allowedUIDs = allowedUIDs.isEmpty ? nil : Set(allowedUIDs)
        configuration.allowedGIDs = allowedGIDs.isEmpty ? nil : Set(allowedGIDs)
        configuration.watchdogInterval = SystemdNotifier.watchdogInterval()
        configuration.notifier = notifier
        configuration.log = { log.fromServer($0) }
        if let watchdog = configuration.watchdogInterval {
            log("watchdog: pinging every \(watchdog.components.seconds * 500 + watchdog.components.attoseconds / 2_000_000_000_000_000) ms while the engine loop makes progress")
        }

        configuration.httpRequestTimeout = httpRequestTimeout > 0 ? .milliseconds(Int64(httpRequestTimeout * 1000)) : nil
        if let httpTokenFile {
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
            let delay = testWeightsCopyDelay
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

extension BlipCaptiond {
    /// The engine adapter (or, for tests only, the fake behind `--test-fake-service`).
    func loadService() throws -> any CaptionService {
        testFakeService ? TestHookService() : try makeService(self)
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
        notifier.notify("RELOADING=1\nMONOTONIC_USEC=\(monotonic)\nSTATUS=reloading model \(modelDirectory ?? "(default location)")…")
        log("SIGHUP: reloading model \(modelDirectory ?? "(default location)")")
        let start = ContinuousClock.now
        do {
            let service = try loadService()
            try service.warmUp()
            try (service as? EngineCaptionService)?.captioner.model.ownWeights()
            server.replaceService(service)
            fileWatch.watch((service as? EngineCaptionService)?.captioner.model)
            log("reloaded and warmed up in \(milliseconds(since: start)) ms")
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

extension WeightPrecision: ExpressibleByArgument {}
