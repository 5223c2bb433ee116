import ArgumentParser
import BLIPCaptionService
import BLIPClient
import BLIPEngine
import CPUFeatures
import Foundation

/// `blip-caption caption`: caption files, folders (recursively) or stdin (`-`).
struct CaptionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "caption",
        abstract: "Caption images: files, directories (recursively) or - for standard input.")

    @Flag(help: "Run the engine in this process instead of asking blip-captiond.") var local = false
    @Option(help: "Model folder for --local (default: $BLIP_MODEL, then the Hugging Face cache).") var model: String?
    @Option(name: [.customLong("precision"), .customLong("weights")], help: ArgumentHelp("With --local: " + Precision.help, valueName: Precision.names))
    var precision: Precision = .float32
    @Option(help: "blip-captiond's socket (default: $BLIP_CAPTIOND_SOCKET, then \(CaptionClient.defaultSocketPath)).") var socket: String?
    @Option(help: "Seconds each image may take with the daemon, queueing included.") var timeout: Double = 120
    @Option(help: "Images in flight at once (output and files stay in input order; default: enough to keep the daemon's encode lanes and decode batch busy, from its Info).") var concurrency: Int?
    @Option(help: ArgumentHelp("Times to try an image again when the daemon is busy (RESOURCE_EXHAUSTED) or restarting (UNAVAILABLE), with exponential back-off and jitter within --timeout; 0 = never.", valueName: "n"))
    var retries: Int = 3
    @Flag(help: "Print one JSON object per image and prompt (JSON Lines) instead of plain captions.") var json = false
    @OptionGroup(title: "Decoding") var decoding: DecodingArguments
    @OptionGroup(title: "Captioning a dataset") var dataset: DatasetArguments
    @Argument(help: "Image files (\(ImageFormat.supportedNames.joined(separator: ", "))), directories (their files with those formats' extensions), or - for standard input.") var images: [String]

    func validate() throws {
        if images.isEmpty { throw ValidationError("give at least one image, directory or -") }
        if let concurrency, concurrency < 1 { throw ValidationError("--concurrency must be at least 1") }
        if !(timeout > 0) { throw ValidationError("--timeout must be > 0 seconds") }
        if retries < 0 { throw ValidationError("--retries must be >= 0, got \(retries)") }
    }

    /// The CLI retries busy and restarting daemons (the library does not unless asked).
    var retryPolicy: RetryPolicy { RetryPolicy(maxAttempts: retries + 1, initialBackoff: .milliseconds(200), maxBackoff: .seconds(5)) }

    func run() async throws {
        let log = StandardError()
        for warning in decoding.ignoredOptionWarnings { log.write("blip-caption: warning: \(warning)") }
        let backend: CaptionBackend
        if local {
            // Before any engine code runs: the engine is built for AVX2 + FMA (CPUFeatures).
            if let problem = CPUFeatures.engineProblem() {
                log.write("blip-caption: --local cannot run here: \(problem); captioning through a daemon works on any CPU")
                throw ExitCode(2)
            }
            if let failure = BLASRuntime.reexecIfNeeded(for: precision) { log.write("blip-caption: \(failure)") }
            let started = ContinuousClock.now
            let captioner: Captioner
            do {
                captioner = try Captioner(folder: try ModelFolder.locate(explicit: model), precision: precision)
            } catch {
                log.write("blip-caption: \(error)")
                throw ExitCode(2)
            }
            log.write("blip-caption: loaded \(captioner.model.modelID) in \(String(format: "%.2f", (ContinuousClock.now - started).seconds)) s; OpenBLAS kernel \(BLASRuntime.coreName), \(BLASRuntime.threads) engine threads, precision \(captioner.model.precision.precision.rawValue) (\(captioner.model.precision.instructionPath))")
            backend = .local(EngineCaptionService(captioner: captioner))
        } else {
            backend = .daemon(CaptionClient(socketPath: socket, retryPolicy: retryPolicy))
        }
        // The options against this daemon's limits, once, before any image is read or sent.
        let info: InfoResponse
        do {
            info = try await backend.info(timeout: .milliseconds(Int64(timeout * 1000)))
            try decoding.checked(against: info.limits)
        } catch let error as CaptionClientError {
            log.write("blip-caption: \(error)")
            throw ExitCode(2)
        }
        let shard = try dataset.shardSelection()
        let expansion = try ImageInputs.expand(images)
        let inputs = expansion.inputs.filter { shard?.contains($0.relativePath) ?? true }
        let plan = try DatasetPlan(inputs: inputs, dataset: dataset, shard: shard)
        let window = concurrency ?? Self.defaultConcurrency(info)
        let summary = try await caption(plan.toCaption, backend: backend, window: window, plan: plan, log: log)
        if let skipped = expansion.skippedSummary { log.write("blip-caption: \(skipped)") }
        if inputs.count > 1 || dataset.writesFiles { log.write(summary.line(skipped: plan.skipped)) }
        if let signal = summary.interruptedBy { throw ExitCode(128 + signal) }
        if summary.fatal {
            if inputs.count > 1 { log.write("blip-caption: stopped after the first failure: every image would fail the same way") }
            throw ExitCode(2)
        }
        if summary.failed > 0 { throw ExitCode(1) }
    }

    /// Calls in flight by default: the daemon's encode lanes plus its decode batch, so both stay
    /// busy, within its queue; 2 when it reports no schedule.
    static func defaultConcurrency(_ info: InfoResponse) -> Int {
        let busy = Int(info.engine.encodeLanes) + Int(info.engine.maxBatch)
        guard busy > 0 else { return 2 }
        let queue = Int(info.limits.maxQueueDepth)
        return max(1, queue > 0 ? min(busy, queue) : busy)
    }

    /// Captions `inputs` with `window` calls in flight, writing results in input order; SIGINT or
    /// SIGTERM stops sending (the calls in flight finish and are written; a second signal ends the process, ``Interruption``).
    private func caption(_ inputs: [ImageInput], backend: CaptionBackend, window: Int, plan: DatasetPlan,
                         log: StandardError) async throws -> RunSummary {
        let output = CaptionOutput(json: json, reportsQueueWait: !local)
        let progress = Progress(total: inputs.count)
        let timeout = Duration.milliseconds(Int64(timeout * 1000))
        let arguments = decoding
        var summary = RunSummary()
        let interruption = Interruption()
        defer { interruption.stop() }
        try await withThrowingTaskGroup(of: (Int, Result<CaptionResponse, any Error>).self) { group in
            var next = 0, printed = 0
            var finished: [Int: Result<CaptionResponse, any Error>] = [:]
            func launch() {
                let index = next, input = inputs[index]
                next += 1
                group.addTask {
                    do { return (index, .success(try await backend.caption(arguments.request(image: try input.read()), timeout: timeout))) } catch {
                        return (index, .failure(error))
                    }
                }
            }
            while next < min(window, inputs.count) { launch() }
            while let (index, result) = try await group.next() {
                finished[index] = result
                while let r = finished.removeValue(forKey: printed) {
                    let name = inputs[printed].name
                    var failure: String?
                    progress.printing {
                        switch r {
                        case .success(let response):
                            output.write(image: name, response: response, prompt: arguments.prompt.first)
                            do { try plan.record(inputs[printed], response: response, prompt: arguments.prompt.first) } catch {
                                failure = "\(error)"
                            }
                        case .failure(let error):
                            failure = "\(error)"
                            output.write(image: name, error: "\(error)")
                            if let e = error as? CaptionClientError, e.meansNoDaemonCanBeReached { summary.fatal = true }
                        }
                        if let failure { log.write("blip-caption: \(name): \(failure)") }
                    }
                    if failure == nil { summary.captioned += 1 } else { summary.failed += 1 }
                    printed += 1
                }
                summary.interruptedBy = interruption.signal
                // Without a daemon every image would fail the same way: stop after the first.
                if !summary.fatal && summary.interruptedBy == nil && next < inputs.count { launch() }
            }
        }
        progress.finish()
        summary.elapsed = progress.elapsed
        return summary
    }
}

extension CaptionClientError {
    /// Every call would fail the same way: nothing listens, or this user may not connect.
    var meansNoDaemonCanBeReached: Bool {
        switch self {
        case .noDaemon, .permissionDenied: true
        default: false
        }
    }
}

/// Lines for people on stderr; library code never prints, the executable does.
struct StandardError: Sendable {
    func write(_ line: String) { FileHandle.standardError.write(Data((line + "\n").utf8)) }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}

extension Precision: ExpressibleByArgument {}
