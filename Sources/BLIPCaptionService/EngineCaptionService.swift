import BLIPEngine
import BLIPProtocol
import BLIPServer
import Foundation

/// The daemon's service: wire requests → the engine's `Captioner` → wire responses. This is the one
/// place where the protocol's types meet the engine's (the daemon and the fuzz targets use it).
public struct EngineCaptionService: CaptionService {
    public static let engineVersion = "blip-captiond 0.1.0"

    public let captioner: Captioner
    /// How `warmUp()` warms the engine: a complete caption of a 64×64 image (true, `--full-warm-up`)
    /// or `Captioner.warmUp()`'s cut-down caption through the same stages (false, the default).
    public let fullWarmUp: Bool

    public init(captioner: Captioner, fullWarmUp: Bool = false) {
        self.captioner = captioner
        self.fullWarmUp = fullWarmUp
    }

    public func caption(_ request: CaptionRequest, checkpoint: () throws -> Void) throws -> CaptionResponse {
        try Self.checkPrompts(request)
        let image = request.image
        let format: ImageFormat?
        switch image.format {
        case .auto: format = nil
        case .jpeg: format = .jpeg
        case .png: format = .png
        case .rawRGB8: format = .rawRGB8(width: Int(image.width), height: Int(image.height))
        }
        var results: [CaptionResponse.PromptResult] = []
        var timings = CaptionResponse.Timings()
        func us(_ seconds: Double) -> UInt64 { UInt64(max(0, seconds * 1e6).rounded()) }
        for prompt in request.requestedPrompts {
            let enginePrompt = prompt.flatMap { $0.isEmpty ? nil : $0 }
            let result = try captioner.caption(image: image.data, format: format,
                                               parameters: Self.parameters(request.options, prompt: enginePrompt),
                                               applyEXIFOrientation: image.appliesEXIFOrientation, checkpoint: checkpoint)
            results.append(.init(prompt: prompt ?? "", candidates: result.candidates.map {
                CaptionResponse.Candidate(text: $0.text, tokenIDs: $0.tokenIDs.map { UInt32(bitPattern: $0) }, score: Double($0.score))
            }))
            timings.imageDecodeMicroseconds += us(result.timings.decode)
            timings.visionMicroseconds += us(result.timings.vision)
            timings.textMicroseconds += us(result.timings.text)
        }
        if request.prompts.isEmpty {
            return CaptionResponse(candidates: results[0].candidates, modelID: captioner.model.modelID, timings: timings)
        }
        return CaptionResponse(modelID: captioner.model.modelID, timings: timings, results: results)
    }

    /// `prompt` and `prompts` are exclusive; `prompts` holds at most ``maxPrompts``.
    static func checkPrompts(_ request: CaptionRequest) throws(RPCError) {
        if request.prompt != nil && !request.prompts.isEmpty {
            throw RPCError(code: .invalidArgument, message: "a request sets either prompt or prompts, not both; put every prompt in prompts")
        }
        if request.prompts.count > maxPrompts {
            throw RPCError(code: .invalidArgument, message: "prompts holds \(request.prompts.count) entries; at most \(maxPrompts) per call (split the call)")
        }
    }

    /// Most prompts one call may carry (`CaptionRequest.prompts`, reported in `Limits.maxPrompts`).
    public static let maxPrompts = 8

    /// One call in this process exactly as the daemon runs it (the same validation, the same
    /// option mapping, the same response): what `blip-caption --local` uses.
    /// - Parameters:
    ///   - request: The request as it would go on the wire.
    ///   - timeout: `nil` for none.
    /// - Throws: `RPCError` with the code and message the daemon would answer.
    public func caption(_ request: CaptionRequest, timeout: Duration?) async throws(RPCError) -> CaptionResponse {
        let deadline = timeout.map { ContinuousClock.now + $0 }
        let result: Result<CaptionResponse, RPCError> = await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(returning: Result { () throws(RPCError) -> CaptionResponse in
                    do {
                        return try self.caption(request) {
                            if let deadline, ContinuousClock.now >= deadline {
                                throw RPCError(code: .deadlineExceeded, message: "the timeout passed; allow more time")
                            }
                        }
                    } catch { throw RPCError(mapping: error) }
                })
            }
        }
        return try result.get()
    }

    /// Wire options → engine parameters. Unset stays the engine's default (docs/protocol.md).
    public static func parameters(_ o: DecodingOptions, prompt: String?) -> GenerationParameters {
        var p = GenerationParameters()
        p.prompt = prompt
        p.doSample = o.doSample ?? false
        p.numBeams = o.numBeams.map { Int($0) } ?? GenerationParameters.defaultNumBeams(doSample: p.doSample)
        p.maxNewTokens = o.maxNewTokens.map { Int($0) }
        p.minNewTokens = o.minNewTokens.map { Int($0) }
        p.maxLength = o.maxLength.map { Int($0) }
        p.minLength = o.minLength.map { Int($0) }
        if let v = o.lengthPenalty { p.lengthPenalty = Float(v) }
        if let v = o.repetitionPenalty { p.repetitionPenalty = Float(v) }
        if let v = o.noRepeatNgramSize { p.noRepeatNgramSize = Int(v) }
        if let v = o.numReturnSequences { p.numReturnSequences = Int(v) }
        if let v = o.earlyStopping { p.earlyStopping = v }
        if let v = o.temperature { p.temperature = Float(v) }
        if let v = o.topK { p.topK = Int(v) }
        if let v = o.topP { p.topP = Float(v) }
        p.seed = o.seed
        p.badWords = o.badWords
        return p
    }

    public func describe() -> InfoResponse {
        let c = captioner.model.config
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
                maxPrompts: UInt32(Self.maxPrompts)))
    }

    /// One caption through every stage before READY=1, so the first caller does not pay for page
    /// faults of the mapped weights and first-touch allocations. By default the engine's cut-down
    /// warm-up (`Captioner.warmUp()`: every weight and kernel once, ~0.35 s on BLIP-large); with
    /// `fullWarmUp` a complete default caption of a 64×64 image (~5 s on BLIP-large).
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
        case .tooManyBytes, .tooManyPixels: .resourceExhausted
        default: .invalidArgument
        }
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
