import ArgumentParser
import BLIPClient
import Foundation

/// Options every daemon subcommand shares.
struct SocketOption: ParsableArguments {
    @Option(help: "blip-captiond's socket (default: $BLIP_CAPTIOND_SOCKET, then \(CaptionClient.defaultSocketPath)).") var socket: String?
}

/// `--timeout` of the quick calls (`health`, `info`): a daemon that is stopped, wedged or
/// swamped must not hold a probe for long.
struct QuickCallTimeout: ParsableArguments {
    @Option(name: .customLong("timeout"), help: ArgumentHelp("Seconds to wait for the daemon's answer.", valueName: "seconds"))
    var seconds: Double = 5

    func validate() throws {
        guard seconds > 0, seconds <= 86_400 else { throw ValidationError("--timeout must be a positive number of seconds, at most 86400") }
    }

    var duration: Duration { .seconds(seconds) }

    /// What the command says when `error` ended its call; a deadline names the flag that
    /// moves it (the client's own text cannot: it does not know the flag).
    func message(for error: any Error, socketPath: String) -> String {
        guard let error = error as? CaptionClientError, error == .deadlineExceeded else { return "blip-caption: \(error)" }
        return "blip-caption: no answer from blip-captiond at \(socketPath) within \(String(format: "%g", seconds)) s; "
            + "is the daemon busy or stopped? raise --timeout"
    }
}

/// `blip-caption health`: SERVING / NOT_SERVING, as grpc.health.v1; exit 0 only when serving.
struct HealthCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "health", abstract: "Ask blip-captiond whether it is serving.")
    @OptionGroup var socket: SocketOption
    @OptionGroup var timeout: QuickCallTimeout
    @Option(help: "Service name to ask about (empty = the whole daemon).") var service = ""
    @Flag(help: "Print {\"status\": \"SERVING\"} (the grpc.health.v1 name) instead of the bare name.") var json = false

    static let names: [HealthCheckResponse.ServingStatus: String] = [
        .unknown: "UNKNOWN", .serving: "SERVING", .notServing: "NOT_SERVING", .serviceUnknown: "SERVICE_UNKNOWN",
    ]

    func run() async throws {
        let client = CaptionClient(socketPath: socket.socket)
        do {
            let status = try await client.health(service: service, timeout: timeout.duration)
            let name = Self.names[status] ?? "UNKNOWN"
            print(json ? JSONValue.object([("status", .string(name))]).text : name)
            await client.close()
            if status != .serving { throw ExitCode(1) }
        } catch let error as CaptionClientError {
            StandardError().write(timeout.message(for: error, socketPath: client.socketPath))
            throw ExitCode(2)
        }
    }
}

/// `blip-caption info`: the model, engine, limits and counters the daemon reports.
struct InfoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "info", abstract: "Show blip-captiond's model, limits, defaults and counters.")
    @OptionGroup var socket: SocketOption
    @OptionGroup var timeout: QuickCallTimeout
    @Flag(help: "Print the whole InfoResponse as one JSON object (the proto's field names as keys).") var json = false

    func run() async throws {
        let client = CaptionClient(socketPath: socket.socket)
        let info: InfoResponse
        do { info = try await client.info(timeout: timeout.duration) } catch {
            StandardError().write(timeout.message(for: error, socketPath: client.socketPath))
            throw ExitCode(2)
        }
        await client.close()
        if json {
            FileHandle.standardOutput.write(InfoJSON.encoded(info) + Data("\n".utf8))
            return
        }
        let m = info.model, l = info.limits, c = info.counters, d = info.defaults, e = info.engine, f = info.featureCache
        print("""
        model:        \(info.modelID)
                      vision \(m.visionHiddenSize)-wide × \(m.visionLayers) layers, \(m.imageSize)px / \(m.patchSize)px patches; text \(m.textHiddenSize)-wide × \(m.textLayers) layers, vocab \(m.vocabSize)
        engine:       \(info.engineVersion), OpenBLAS \(info.blasCore) × \(info.blasThreads) threads
        precision:    \(info.weightsPrecision.isEmpty ? "not reported" : info.weightsPrecision)\(info.instructionPath.isEmpty ? "" : " on \(info.instructionPath)")
        schedule:     \(schedule(e))
        cache:        image features \(featureCache(f))
        defaults:     num_beams \(d.numBeams.map(String.init) ?? "-"), max_length \(d.maxLength.map(String.init) ?? "-"), min_length \(d.minLength.map(String.init) ?? "-")
        images:       \(info.imageFormats.isEmpty ? "not reported" : info.imageFormats.joined(separator: ", "))
        limits:       frame \(l.maxFrameBytes) B, image \(l.maxImageBytes) B, \(l.maxPixels) pixels, \(l.maxTokens) tokens, \(l.maxBeams) beams, \(l.maxPrompts) prompts, queue \(l.maxQueueDepth)
        uptime:       \(String(format: "%.1f", Double(c.uptimeMicroseconds) / 1e6)) s
        queue depth:  \(c.queueDepth)
        latency:      p50 \(ms(c.latencyP50Microseconds)) ms, p95 \(ms(c.latencyP95Microseconds)) ms, p99 \(ms(c.latencyP99Microseconds)) ms
        requests:     \(c.requestsByStatus.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key.name) \($0.value)" }.joined(separator: ", "))
        """)
    }

    private func ms(_ us: UInt64) -> String { String(format: "%.1f", Double(us) / 1000) }

    /// A daemon that does not report its schedule sends none (all zero).
    private func schedule(_ e: InfoResponse.EngineSchedule) -> String {
        guard e != InfoResponse.EngineSchedule() else { return "not reported" }
        return "up to \(e.maxBatch) prompts decoded together, \(e.threads) threads, \(e.encodeLanes) encode lanes × \(e.threadsPerLane) threads; "
            + "\(e.iterations) iterations, \(e.batchedSteps) batched steps"
    }

    /// All zero when the cache is off.
    private func featureCache(_ f: InfoResponse.FeatureCacheStats) -> String {
        guard f.capacityBytes > 0 else { return "off" }
        let mib = { (bytes: UInt64) in String(format: "%.1f MiB", Double(bytes) / 1_048_576) }
        return "\(mib(f.bytes)) of \(mib(f.capacityBytes)), \(f.entries) entries, \(f.hits) hits, \(f.misses) misses"
    }
}

/// `blip-caption bench`: N requests at concurrency C against the daemon, each with a distinct copy
/// of the image (``BenchImageCopies``) unless `--same-image`; the report counts the calls the
/// feature cache answered, since those skip most of a caption's work.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Send N caption requests at concurrency C to blip-captiond and report latency and throughput.",
        discussion: """
            Each request carries its own copy of the image, which differs from the file only in a \
            comment the decoders skip (same pixels, same work), so the daemon's feature cache cannot \
            answer one request from another and the throughput is that of whole captions. \
            --same-image sends the file's bytes every time instead; the report says how many calls \
            the feature cache answered either way.
            """)
    @OptionGroup var socket: SocketOption
    @Option(name: [.customShort("n"), .customLong("requests")], help: "Requests in all.") var requests = 20
    @Option(name: [.customShort("c"), .customLong("concurrency")], help: "Requests in flight at once (each on its own connection).") var concurrency = 1
    @Option(help: "Seconds each request may take.") var timeout: Double = 300
    @Flag(help: "Send the same bytes every time, so that the daemon's feature cache may answer all calls but the first (default: a distinct copy per request).")
    var sameImage = false
    @OptionGroup(title: "Decoding") var decoding: DecodingArguments
    @Argument(help: "Image to send.") var image: String

    func validate() throws {
        if requests < 1 || concurrency < 1 { throw ValidationError("--requests and --concurrency must be at least 1") }
    }

    func run() async throws {
        for warning in decoding.ignoredOptionWarnings { StandardError().write("blip-caption: warning: \(warning)") }
        guard let bytes = FileManager.default.contents(atPath: image) else { throw ValidationError("cannot read \(image)") }
        let images = BenchImageCopies([UInt8](bytes), sameImage: sameImage)
        let timeout = Duration.milliseconds(Int64(timeout * 1000))
        let clients = (0..<concurrency).map { _ in CaptionClient(socketPath: socket.socket) }
        // Without a daemon every request would fail alike: say so once, as `caption` does (exit 2).
        do { _ = try await clients[0].health(timeout: timeout) } catch let error as CaptionClientError where error.meansNoDaemonCanBeReached {
            StandardError().write("blip-caption: \(error)")
            throw ExitCode(2)
        } catch {}  // anything else (a busy daemon) is what the run measures
        let clock = ContinuousClock()
        let start = clock.now
        var latencies: [Double] = []
        var errors: [String: Int] = [:]
        var cacheHits = 0
        await withTaskGroup(of: (Double, String?, Bool).self) { group in
            var sent = 0
            func send(_ client: CaptionClient) {
                let request = decoding.request(image: images.image(sent))
                sent += 1
                group.addTask {
                    let t0 = clock.now
                    do {
                        let response = try await client.caption(request, timeout: timeout)
                        return ((clock.now - t0).seconds, nil, response.timings.featureCacheHit)
                    } catch let e as CaptionClientError {
                        return ((clock.now - t0).seconds, e.code.name, false)
                    } catch {
                        return ((clock.now - t0).seconds, "\(error)", false)
                    }
                }
            }
            for client in clients.prefix(requests) { send(client) }
            var index = 0
            while let (latency, error, hit) = await group.next() {
                if let error { errors[error, default: 0] += 1 } else { latencies.append(latency) }
                if hit { cacheHits += 1 }
                if sent < requests { send(clients[index % clients.count]); index += 1 }
            }
        }
        let wall = (clock.now - start).seconds
        for client in clients { await client.close() }
        latencies.sort()
        func pct(_ p: Double) -> String {
            guard !latencies.isEmpty else { return "-" }
            let i = min(latencies.count - 1, Int((p / 100 * Double(latencies.count)).rounded(.up)) - 1)
            return String(format: "%.1f ms", latencies[max(i, 0)] * 1000)
        }
        print("requests \(requests), concurrency \(concurrency), ok \(latencies.count), wall \(String(format: "%.2f", wall)) s")
        print(images.describe(image, requests: requests))
        print("throughput \(String(format: "%.3f", Double(latencies.count) / wall)) images/s")
        print("feature cache hits \(cacheHits) of \(latencies.count)"
              + (cacheHits > 0 ? " (those calls skipped the image decode and the vision encoder: the throughput above is not that of whole captions)" : ""))
        print("latency p50 \(pct(50)), p95 \(pct(95)), p99 \(pct(99))")
        print("errors " + (errors.isEmpty ? "none" : errors.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")))
        if !errors.isEmpty { throw ExitCode(1) }
    }
}
