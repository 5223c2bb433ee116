import Foundation

/// One caption hypothesis: the decoded text, the full token sequence as transformers returns it
/// (`[DEC]`, the prompt, the generated tokens and the final `[SEP]` if one was generated) and its score.
public struct CaptionCandidate: Sendable, Equatable, Codable {
    public var text: String
    public var tokenIDs: [Int32]
    public var score: Float

    enum CodingKeys: String, CodingKey { case text, tokenIDs = "token_ids", score }

    public init(text: String, tokenIDs: [Int32], score: Float) {
        self.text = text
        self.tokenIDs = tokenIDs
        self.score = score
    }
}

/// Where the time of one caption went, in seconds.
public struct CaptionTimings: Sendable, Equatable {
    /// Decoding the image file and resizing/normalising it.
    public var decode: Double = 0
    public var vision: Double = 0
    /// Cross-attention projection and all decoding steps.
    public var text: Double = 0
}

public struct CaptionResult: Sendable, Equatable {
    public var candidates: [CaptionCandidate]
    public var timings: CaptionTimings
}

/// The engine's single entry point: image bytes + decoding parameters → ranked captions.
///
/// Thread-safe: the model is immutable and every call owns its scratch state. Calls made at the same
/// time cooperate through one ``StepBatcher``: their image encodes take turns and their decode steps
/// run together, each weight read once for all of them.
public final class Captioner: Sendable {
    public let model: BlipModel
    public let tokenizer: WordPieceTokenizer
    public let imageLimits: ImageLimits
    public let generationLimits: GenerationLimits
    /// Pixels → the model's normalised input; internal so that `warmUp()` (WarmUp.swift) takes the same path.
    let normalizer: ImageNormalizer
    /// Shares the cores between concurrent calls.
    public let batcher: StepBatcher

    public init(folder: ModelFolder, imageLimits: ImageLimits = .default, generationLimits: GenerationLimits = GenerationLimits(),
                decoderWeights: WeightPrecision = .float32) throws {
        model = try BlipModel(folder: folder, decoderWeights: decoderWeights)
        tokenizer = try WordPieceTokenizer(folder: folder)
        let p = model.preprocessor
        normalizer = ImageNormalizer(imageSize: p.imageSize, mean: p.imageMean, std: p.imageStd, rescaleFactor: p.rescaleFactor)
        self.imageLimits = imageLimits
        self.generationLimits = generationLimits
        batcher = StepBatcher(decoder: model.text)
    }

    /// The decoder's input before any generated token: `[DEC]`, then the prompt's tokens. As in
    /// `BlipForConditionalGeneration.generate`, the tokenizer's `[CLS] … [SEP]` has `[CLS]` replaced
    /// by `[DEC]` and its last column dropped.
    public func prefix(prompt: String?) -> [Int32] {
        let bos = model.config.text.bosTokenID
        guard let prompt else { return [bos] }
        var ids = tokenizer.encodeWithSpecialTokens(prompt)
        ids[0] = bos
        ids.removeLast()
        return ids.isEmpty ? [bos] : ids
    }

    /// Captions one image.
    /// - Parameters:
    ///   - image: JPEG or PNG file bytes, or raw RGB8 pixels with `format: .rawRGB8(width:height:)`.
    ///   - format: nil to detect JPEG/PNG from the bytes.
    ///   - parameters: decoding parameters; validated here.
    ///   - applyEXIFOrientation: rotate/flip as the EXIF orientation tag says (transformers does not).
    ///   - checkpoint: called before each decoding step; throw from it to abandon the work
    ///     (deadline passed, caller gone).
    /// - Throws: `ImageError` for bad images, `ParameterError` for parameters out of range, or
    ///   whatever `checkpoint` throws.
    public func caption(image: [UInt8], format: ImageFormat? = nil, parameters: GenerationParameters = GenerationParameters(),
                        applyEXIFOrientation: Bool = true, checkpoint: () throws -> Void = {}) throws -> CaptionResult {
        let clock = ContinuousClock()
        var timings = CaptionTimings()
        let start = clock.now
        let parameters = try parameters.validated(maxPositions: model.config.text.maxPositionEmbeddings, limits: generationLimits)
        let prefix = self.prefix(prompt: parameters.prompt)
        let badWordIDs = parameters.badWords.map { tokenizer.encode($0) }.filter { !$0.isEmpty }
        // The longest the sequence can get, [DEC] and prompt included; it must fit the position table.
        let maxLength = parameters.maxNewTokens.map { prefix.count + $0 } ?? parameters.maxLength ?? 20
        let positions = model.config.text.maxPositionEmbeddings
        guard maxLength <= positions else {
            throw ParameterError(parameter: parameters.maxNewTokens == nil ? "max_length" : "max_new_tokens",
                                 allowed: "such that prompt + generated tokens fit in \(positions) positions (the prompt takes \(prefix.count))",
                                 value: "\(parameters.maxNewTokens ?? maxLength)")
        }

        let decoded = try ImageDecoder.decode(image, format: format, applyEXIFOrientation: applyEXIFOrientation, limits: imageLimits)
        let s = model.preprocessor.imageSize
        let pixels = FloatBuffer(count: 3 * s * s)
        normalizer.pixelValues(from: decoded, into: UnsafeMutableBufferPointer(start: pixels.pointer, count: pixels.count))
        let afterDecode = clock.now
        timings.decode = (afterDecode - start).seconds
        try checkpoint()

        let vc = model.config.vision
        let features = FloatBuffer(count: vc.tokenCount * vc.hiddenSize)
        var afterVision = afterDecode
        // The encode and the image's cross-attention keys/values: compute-bound, one call at a time
        // (waiting for the turn checks `checkpoint`).
        let session = try batcher.encode(checkpoint: checkpoint) { () -> DecoderSession in
            let encodeStart = clock.now
            model.encodeImage(pixels: pixels.pointer, into: features.pointer, state: VisionState(config: vc))
            afterVision = clock.now
            timings.vision = (afterVision - encodeStart).seconds
            return model.makeSession(features: features.pointer, maxRows: max(parameters.numBeams, 1), maxLength: maxLength)
        }

        let generator = Generator(eosTokenID: model.config.text.sepTokenID, padTokenID: model.config.text.padTokenID)
        batcher.join()
        defer { batcher.leave() }
        let candidates = try withoutActuallyEscaping(checkpoint) { checkpoint in
            // The stepper lives only for this call; it checks `checkpoint` while a step waits for others.
            try generator.generate(prefix: prefix, parameters: parameters, badWordIDs: badWordIDs,
                                   model: BatchedStepper(session: session, batcher: batcher, checkpoint: checkpoint),
                                   checkpoint: checkpoint)
        }
        timings.text = (clock.now - afterVision).seconds
        return CaptionResult(
            candidates: candidates.map {
                CaptionCandidate(text: tokenizer.decode($0.tokenIDs), tokenIDs: $0.tokenIDs, score: $0.score)
            },
            timings: timings)
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
