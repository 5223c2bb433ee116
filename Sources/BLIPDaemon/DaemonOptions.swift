import ArgumentParser
import BLIPEngine
import BLIPServer
import Foundation
import Glibc

/// Every option of `blip-captiond` (and of the test executable that runs the same start-up over a
/// fake service): what ``Daemon`` starts from.
public struct DaemonOptions: ParsableArguments, Sendable {
    public init() {}

    @Option(help: ArgumentHelp("The model folder: config.json, vocab.txt (or tokenizer.json) and the weights, read in this order of preference: model.safetensors, model.safetensors.index.json (shards), pytorch_model.bin (torch.save's zip format, its pickle read without running anything: a checkpoint asking for more than a state dict is refused), pytorch_model.bin.index.json. tf_model.h5, flax_model.msgpack and pre-1.6 torch files must be converted to safetensors first. Default: $BLIP_MODEL, else the engine's model discovery.", valueName: "dir"))
    public var model: String?

    @Option(help: ArgumentHelp("Socket to bind when systemd passes none (LISTEN_FDS unset).", valueName: "path"))
    public var socket = "/run/blip-captiond/blip-captiond.sock"

    @Option(help: ArgumentHelp("Permissions of a socket this process binds, in octal.", valueName: "mode"))
    public var socketMode = "0660"

    @Option(help: "Caption calls waiting or running at once; one more gets RESOURCE_EXHAUSTED.")
    public var queueDepth = 16

    @Option(help: "Prompts the engine loop works on at once (encoding or decoding): their decode steps run together, each weight read once for all (1 = strictly one at a time).")
    public var maxBatch = 4

    @Option(help: ArgumentHelp("Images encoded side by side at most when several wait, each lane with its share of the threads (default: one lane per engine thread).", valueName: "n"))
    public var encodeLanes: Int?

    @Option(help: ArgumentHelp("MiB of image features kept so that another prompt for the same image skips the encoder (0 turns the cache off).", valueName: "MiB"))
    public var featureCacheMb = 256

    @Option(help: ArgumentHelp("Largest frame a client may send, in bytes (docs/protocol.md §1). Default: 32 MiB + 256 KiB, or --max-image-bytes + 256 KiB when that is more (the largest image must fit with its envelope).", valueName: "bytes"))
    public var maxFrameBytes: Int?

    @Option(help: ArgumentHelp("Serve HTTP too — /healthz, /readyz, /metrics (Prometheus), /v1/models, /v1/chat/completions (OpenAI-compatible) — on HOST:PORT (e.g. 127.0.0.1:8080) or a Unix socket path. Off by default; systemd can pass a socket named http instead.", valueName: "address"))
    public var httpListen: String?

    @Option(help: ArgumentHelp("A file whose first line is a token every HTTP request but /healthz and /readyz must send as Authorization: Bearer TOKEN (for a port reachable beyond this host).", valueName: "path"))
    public var httpTokenFile: String?

    @Option(help: ArgumentHelp("Seconds an HTTP caption may take before it is answered 504, unless its request sets X-Request-Timeout (seconds); 0 = no server deadline.", valueName: "seconds"))
    public var httpRequestTimeout: Double = 120

    @Option(help: ArgumentHelp("Seconds a connection with no call in flight and no half-sent frame stays open (0 = for ever).", valueName: "seconds"))
    public var idleTimeout: Double = 300

    @Option(help: ArgumentHelp("Bytes of half-received frames and HTTP bodies all connections together may hold; a read past it is refused (RESOURCE_EXHAUSTED; HTTP 503) and its connection closed.", valueName: "bytes"))
    public var maxBufferedBytes = ServerConfiguration().maxBufferedBytes

    @Option(help: ArgumentHelp("Seconds a client may leave answers unread beyond its outgoing queue before it is disconnected and its calls cancelled.", valueName: "seconds"))
    public var sendGracePeriod: Double = 10

    @Option(help: "Connections open at once; one more is refused with RESOURCE_EXHAUSTED.")
    public var maxConnections = ServerConfiguration().maxConnections

    @Option(help: ArgumentHelp("Seconds a client may leave a request unfinished (a frame half-sent, an HTTP head or body) before its connection is closed.", valueName: "seconds"))
    public var partialFrameTimeout: Double = 30

    @Option(help: ArgumentHelp("Seconds calls in flight may run after SIGTERM before they are answered UNAVAILABLE.", valueName: "seconds"))
    public var gracePeriod: Double = 10

    @Option(help: ArgumentHelp("Exit cleanly after this many seconds with no RPC connection, no HTTP request in progress and no call (systemd starts the daemon again on the next one).", valueName: "seconds"))
    public var idleExit: Double?

    @Option(name: .customLong("allow-uid"), help: ArgumentHelp("Only peers with this uid (SO_PEERCRED) may call; repeatable. Others get PERMISSION_DENIED.", valueName: "uid"))
    public var allowedUIDs: [UInt32] = []

    @Option(name: .customLong("allow-gid"), help: ArgumentHelp("Only peers with this gid may call; repeatable. A peer matching --allow-uid or --allow-gid is let in.", valueName: "gid"))
    public var allowedGIDs: [UInt32] = []

    @Option(help: "Largest image a request may carry, in bytes (checked before decoding).")
    public var maxImageBytes = ImageLimits.default.maxBytes

    @Option(help: "Most pixels (width × height) an image may declare; checked from its header before decoding.")
    public var maxPixels = ImageLimits.default.maxPixels

    @Option(help: "Most beams (and returned sequences) a request may ask for.")
    public var maxBeams = 8

    /// The old, slow warm-up: a complete caption before READY=1 instead of the engine's cut-down one.
    @Flag(help: "Warm up with a complete caption of a 64×64 image (seconds on BLIP-large) instead of the quick warm-up (every stage once, on a few image tokens and 2 new tokens; docs/daemon.md).")
    public var fullWarmUp = false

    @Option(name: [.customLong("precision"), .customLong("weights")], help: ArgumentHelp(Precision.help, valueName: Precision.names))
    public var precision: Precision = .float32

    /// TEST HOOK: hold the weights in the mapped file this many seconds after READY before copying
    /// them into owned memory, so a test can truncate the file inside that window.
    @Option(name: .customLong("test-weights-copy-delay"), help: .hidden)
    public var testWeightsCopyDelay: Double = 0

    /// Room for the envelope and the other request fields beside the largest image in a frame.
    public static let envelopeAllowance = 256 << 10

    /// `--max-frame-bytes`, else the default raised to fit `--max-image-bytes` and its envelope.
    public var effectiveMaxFrameBytes: Int {
        maxFrameBytes ?? max(ServerConfiguration().maxFrameBytes, maxImageBytes + Self.envelopeAllowance)
    }

    /// The model folder: `--model`, else `$BLIP_MODEL` (set by the unit), else `nil` (the
    /// engine's own discovery).
    public var modelDirectory: String? {
        model ?? ProcessInfo.processInfo.environment["BLIP_MODEL"].flatMap { $0.isEmpty ? nil : $0 }
    }

    public func validate() throws {
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
}

extension Precision: ExpressibleByArgument {}
