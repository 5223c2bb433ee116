import BLIPEngine
import BLIPProtocol
import BLIPServer
import Foundation

/// The daemon's service: wire requests → the engine's `Captioner` (its `DecodeLoop`) → wire
/// responses. This is the one place where the protocol's types meet the engine's: the daemon,
/// `blip-caption --local` and the fuzz targets all go through it.
public struct EngineCaptionService: CaptionService {
    public static let engineVersion = ReleaseVersion.line(for: "blip-captiond")

    /// Most prompts one call may carry (`CaptionRequest.prompts`, reported in `Limits.maxPrompts`).
    public static let maxPrompts = 8

    public let captioner: Captioner
    /// How `warmUp()` warms the engine: a complete caption of a 64×64 image (true, `--full-warm-up`)
    /// or `Captioner.warmUp()`'s cut-down caption through the same stages (false, the default).
    public let fullWarmUp: Bool

    public init(captioner: Captioner, fullWarmUp: Bool = false) {
        self.captioner = captioner
        self.fullWarmUp = fullWarmUp
    }

    // MARK: Calls

    public func submit(_ request: CaptionRequest, deadline: ContinuousClock.Instant?,
                       onText: (@Sendable (_ prompt: Int, _ piece: String) -> Void)?,
                       completion: @escaping @Sendable (Result<CaptionResponse, any Error>) -> Void) throws -> CaptionTicket {
        var job = try Self.job(request, deadline: deadline)
        job.onText = onText
        let modelID = captioner.model.modelID, revision = captioner.model.revision
        let handle = try captioner.submit(job) { result in
            completion(result.map { Self.response($0, to: request, modelID: modelID, revision: revision) })
        }
        return CaptionTicket(id: handle.id)
    }

    public func cancel(_ ticket: CaptionTicket) {
        captioner.cancel(CaptionJobHandle(id: ticket.id))
    }

    public func isMakingProgress(within window: Duration, now: ContinuousClock.Instant) -> Bool {
        captioner.loop.isMakingProgress(within: window, now: now)
    }

    public func load() -> EngineLoad {
        let load = captioner.loop.load
        return EngineLoad(waiting: load.waiting, running: load.running)
    }

    /// One call in this process exactly as the daemon runs it (the same validation, the same
    /// option mapping, the same response): what `blip-caption --local` uses. Cancelling the task
    /// cancels the call.
    /// - Parameters:
    ///   - request: The request as it would go on the wire.
    ///   - timeout: `nil` for none.
    /// - Throws: `RPCError` with the code and message the daemon would answer.
    public func caption(_ request: CaptionRequest, timeout: Duration?) async throws(RPCError) -> CaptionResponse {
        let deadline = timeout.map { ContinuousClock.now + $0 }
        let ticket = LockedState<CaptionTicket?>(nil)
        let result: Result<CaptionResponse, RPCError> = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                do {
                    let submitted = try submit(request, deadline: deadline) { result in
                        continuation.resume(returning: result.mapError { RPCError(mapping: $0) })
                    }
                    ticket.withLock { $0 = submitted }
                    if Task.isCancelled { cancel(submitted) }
                } catch {
                    continuation.resume(returning: .failure(RPCError(mapping: error)))
                }
            }
        } onCancel: {
            if let submitted = ticket.withLock({ $0 }) { cancel(submitted) }
        }
        return try result.get()
    }

    // MARK: The mapping wire ↔ engine

    /// `prompt` and `prompts` are exclusive; `prompts` holds at most ``maxPrompts``.
    static func checkPrompts(_ request: CaptionRequest) throws(RPCError) {
        if request.prompt != nil && !request.prompts.isEmpty {
            throw RPCError(code: .invalidArgument, message: "a request sets either prompt or prompts, not both; put every prompt in prompts")
        }
        if request.prompts.count > maxPrompts {
            throw RPCError(code: .invalidArgument, message: "prompts holds \(request.prompts.count) entries; at most \(maxPrompts) per call (split the call)")
        }
    }

    /// The engine job a request asks for: one prompt per `requestedPrompts` entry.
    static func job(_ request: CaptionRequest, deadline: ContinuousClock.Instant?) throws(RPCError) -> CaptionJob {
        try checkPrompts(request)
        let image = request.image
        let format: ImageFormat?
        switch image.format {
        case .auto: format = nil
        case .jpeg: format = .jpeg
        case .png: format = .png
        case .rawRGB8: format = .rawRGB8(width: Int(image.width), height: Int(image.height))
        }
        return CaptionJob(image: image.data, format: format, applyEXIFOrientation: image.appliesEXIFOrientation,
                          prompts: try request.requestedPrompts.map { (prompt) throws(RPCError) in
                              do { return try parameters(request.options, prompt: prompt) } catch { throw RPCError(mapping: error) }
                          },
                          deadline: deadline)
    }

    /// The engine's result as the wire response: `candidates` for a single-prompt request,
    /// `results` (one per prompt, in order) for a request with `prompts`.
    static func response(_ result: CaptionJobResult, to request: CaptionRequest, modelID: String, revision: String) -> CaptionResponse {
        func us(_ seconds: Double) -> UInt64 { UInt64(max(0, seconds * 1e6).rounded()) }
        let t = result.timings
        let timings = CaptionResponse.Timings(
            queueWaitMicroseconds: us(t.queueWait), imageDecodeMicroseconds: us(t.decode),
            visionMicroseconds: us(t.vision), textMicroseconds: us(t.text), featureCacheHit: t.featureCacheHit)
        let lists = result.captions.map { $0.map(candidate) }
        if request.prompts.isEmpty {
            return CaptionResponse(candidates: lists[0], modelID: modelID, timings: timings, modelRevision: revision)
        }
        return CaptionResponse(modelID: modelID, timings: timings,
                               results: zip(request.prompts, lists).map { .init(prompt: $0, candidates: $1) }, modelRevision: revision)
    }

    static func candidate(_ c: CaptionCandidate) -> CaptionResponse.Candidate {
        CaptionResponse.Candidate(text: c.text, tokenIDs: c.tokenIDs.map { UInt32(bitPattern: $0) }, score: Double(c.score),
                                  finishReason: c.finishReason == .eos ? .eos : .length,
                                  generatedTokens: UInt32(clamping: c.generatedTokens))
    }

    /// Wire options → engine parameters: the one mapping (the daemon and `blip-caption --local`),
    /// option by option as the table names them. Unset stays the engine's default (the table's,
    /// ``DecodingOptions/documentedDefaults``); an empty prompt is unconditional. The double options
    /// are checked at the precision they arrive in before they become Floats
    /// (``GenerationParameters/narrowed(_:parameter:)``).
    /// - Throws: `ParameterError` naming the option that no 32-bit float can hold.
    public static func parameters(_ o: DecodingOptions, prompt: String?) throws(ParameterError) -> GenerationParameters {
        var p = GenerationParameters()
        p.prompt = prompt.flatMap { $0.isEmpty ? nil : $0 }
        for option in DecodingOption.allCases {
            if let value = o[option] { try p.set(option, to: value) }
        }
        return p
    }

    // MARK: Info and warm-up

    public func describe() -> InfoResponse {
        let c = captioner.model.config
        let loop = captioner.loop
        let lanes = loop.configuration.lanes(forEncoding: Int.max)
        let statistics = loop.statistics
        let cache = captioner.featureCache?.statistics
        return InfoResponse(
            modelID: captioner.model.modelID,
            model: InfoResponse.ModelSummary(
                visionHiddenSize: UInt32(c.vision.hiddenSize), visionLayers: UInt32(c.vision.numHiddenLayers),
                imageSize: UInt32(c.vision.imageSize), patchSize: UInt32(c.vision.patchSize),
                textHiddenSize: UInt32(c.text.hiddenSize), textLayers: UInt32(c.text.numHiddenLayers),
                vocabSize: UInt32(c.text.vocabSize)),
            engineVersion: Self.engineVersion,
            blasCore: BLASRuntime.coreName, blasThreads: UInt32(BLASRuntime.threads),
            defaults: .documentedDefaults,
            limits: InfoResponse.Limits(
                maxImageBytes: UInt64(captioner.imageLimits.maxBytes), maxPixels: UInt64(captioner.imageLimits.maxPixels),
                maxTokens: UInt32(c.text.maxPositionEmbeddings), maxBeams: UInt32(captioner.generationLimits.maxBeams),
                maxPrompts: UInt32(Self.maxPrompts), maxJPEGScans: UInt32(clamping: captioner.imageLimits.maxScans),
                maxTextBytes: UInt32(clamping: captioner.generationLimits.maxTextBytes),
                maxBadWords: UInt32(clamping: captioner.generationLimits.maxBadWords),
                maxBadWordTokens: UInt32(clamping: captioner.generationLimits.maxBadWordTokens)),
            featureCache: cache.map {
                InfoResponse.FeatureCacheStats(capacityBytes: UInt64($0.capacityBytes), bytes: UInt64($0.bytes),
                                               entries: UInt64($0.entries), hits: $0.hits, misses: $0.misses)
            } ?? InfoResponse.FeatureCacheStats(),
            engine: InfoResponse.EngineSchedule(
                maxBatch: UInt32(loop.configuration.maxBatch), threads: UInt32(loop.configuration.threads),
                encodeLanes: UInt32(lanes.lanes), threadsPerLane: UInt32(lanes.threadsPerLane),
                iterations: statistics.iterations, batchedSteps: statistics.batchedSteps),
            modelRevision: captioner.model.revision,
            weightsPrecision: captioner.model.precision.precision.rawValue,
            imageFormats: ImageFormat.supportedNames,
            instructionPath: captioner.model.precision.instructionPath)
    }

    /// One caption through every stage before READY=1, so the first caller does not pay for page
    /// faults of the mapped weights and first-touch allocations. By default the engine's cut-down
    /// warm-up (`Captioner.warmUp()`: every weight and kernel once, ~0.35 s on BLIP-large); with
    /// `fullWarmUp` a complete default caption of a 64×64 image through the engine loop (~5 s on
    /// BLIP-large).
    public func warmUp() throws {
        if fullWarmUp {
            let side = 64
            let pixels = (0..<(side * side * 3)).map { UInt8(truncatingIfNeeded: $0 &* 37) }
            _ = try captioner.caption(image: pixels, format: .rawRGB8(width: side, height: side))
        } else {
            _ = try captioner.warmUp()
        }
    }
}

// Engine errors → gRPC status codes, in one place.

extension ImageError: RPCErrorConvertible {
    public var rpcErrorCode: StatusCode {
        switch self {
        case .tooManyBytes, .tooManyPixels, .tooManyScans: .resourceExhausted
        // The engine loop reports these two as `CaptionJobError`; the same statuses here, so an
        // image error met elsewhere never reads as a bad argument.
        case .deadlineExceeded: .deadlineExceeded
        case .cancelled: .cancelled
        default: .invalidArgument
        }
    }

    /// The size limits as the caller meets them: what was sent, what the daemon accepts and which
    /// of its options sets that.
    public var rpcErrorMessage: String {
        switch self {
        case let .tooManyBytes(count, limit):
            "image of \(Self.mebibytes(count)); this daemon accepts up to \(Self.mebibytes(limit)) (--max-image-bytes): re-encode or downscale it"
        case let .tooManyPixels(width, height, limit):
            "image of \(width)×\(height) pixels; this daemon accepts up to \(limit) pixels (--max-pixels): downscale it before sending"
        default:
            description
        }
    }

    private static func mebibytes(_ bytes: Int) -> String {
        let mib = Double(bytes) / Double(1 << 20)
        return mib == mib.rounded() ? "\(Int(mib)) MiB" : String(format: "%.1f MiB", mib)
    }
}

extension ParameterError: RPCErrorConvertible {
    public var rpcErrorCode: StatusCode { .invalidArgument }
}

extension GenerationError: RPCErrorConvertible {
    public var rpcErrorCode: StatusCode { .invalidArgument }
}

extension TokenizerError: RPCErrorConvertible {
    public var rpcErrorCode: StatusCode { .internal }
}

extension CaptionJobError: RPCErrorConvertible {
    public var rpcErrorCode: StatusCode {
        switch self {
        case .deadlineExceeded: .deadlineExceeded
        case .cancelled: .cancelled
        case .noPrompts: .invalidArgument
        }
    }
}

extension DecoderSessionError: RPCErrorConvertible {
    public var rpcErrorCode: StatusCode { .internal }
}
