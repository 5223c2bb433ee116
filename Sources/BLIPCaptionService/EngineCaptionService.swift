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
        let image = request.image
        let format: ImageFormat?
        switch image.format {
        case .auto: format = nil
        case .jpeg: format = .jpeg
        case .png: format = .png
        case .rawRGB8: format = .rawRGB8(width: Int(image.width), height: Int(image.height))
        }
        let result = try captioner.caption(image: image.data, format: format,
                                           parameters: Self.parameters(request.options, prompt: request.prompt),
                                           applyEXIFOrientation: image.appliesEXIFOrientation, checkpoint: checkpoint)
        func us(_ seconds: Double) -> UInt64 { UInt64(max(0, seconds * 1e6).rounded()) }
        return CaptionResponse(
            candidates: result.candidates.map {
                CaptionResponse.Candidate(text: $0.text, tokenIDs: $0.tokenIDs.map { UInt32(bitPattern: $0) }, score: Double($0.score))
            },
            modelID: captioner.model.modelID,
            timings: CaptionResponse.Timings(imageDecodeMicroseconds: us(result.timings.decode),
                                             visionMicroseconds: us(result.timings.vision), textMicroseconds: us(result.timings.text)))
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
                maxTokens: UInt32(c.text.maxPositionEmbeddings), maxBeams: UInt32(captioner.generationLimits.maxBeams)))
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
