import Foundation

/// One caption hypothesis: the decoded text, the full token sequence as transformers returns it
/// (`[DEC]`, the prompt, the generated tokens and the final `[SEP]` if one was generated) and its score.
public struct CaptionCandidate: Sendable, Equatable, Codable {
    public var text: String
    public var tokenIDs: [Int32]
    public var score: Float
    /// Why generation ended: `[SEP]`, or the length limit.
    public var finishReason: FinishReason
    /// Tokens after `[DEC]` and the prompt, the final `[SEP]` included.
    public var generatedTokens: Int

    enum CodingKeys: String, CodingKey { case text, tokenIDs = "token_ids", score, finishReason = "finish_reason", generatedTokens = "generated_tokens" }

    public init(text: String, tokenIDs: [Int32], score: Float, finishReason: FinishReason, generatedTokens: Int) {
        self.text = text
        self.tokenIDs = tokenIDs
        self.score = score
        self.finishReason = finishReason
        self.generatedTokens = generatedTokens
    }
}

/// Where the time of one caption went, in seconds.
public struct CaptionTimings: Sendable, Equatable {
    /// Decoding the image file and resizing/normalising it.
    public var decode: Double = 0
    public var vision: Double = 0
    /// Cross-attention projection and all decoding steps.
    public var text: Double = 0
    /// From submission to the start of the work (waiting for a turn in the engine loop).
    public var queueWait: Double = 0
    /// The image's features came from the feature cache: no decode, resize or encode ran.
    public var featureCacheHit = false
}

public struct CaptionResult: Sendable, Equatable {
    public var candidates: [CaptionCandidate]
    public var timings: CaptionTimings
}

/// The engine's entry point: image bytes + decoding parameters → ranked captions.
///
/// Thread-safe: every caption runs on the captioner's ``loop`` (`DecodeLoop`), which owns the
/// model's work: concurrent jobs take turns for encode work, encode side by side in lanes, and
/// decode together, each weight read once per step for all of them.
public final class Captioner: Sendable {
    /// How the loop and the cache are set up.
    public struct Configuration: Sendable, Equatable {
        /// Prompts decoding or encoding at once; more wait their turn. The library default is 1
        /// (the daemon's `--max-batch` defaults to 4).
        public var maxBatch = 1
        /// Images encoded side by side at most; `nil` lets the loop choose (`DecodeLoop.Configuration`).
        public var encodeLanes: Int? = nil
        /// Bytes of image features kept for reuse (`FeatureCache`); 0 keeps none.
        public var featureCacheBytes = 0

        public init(maxBatch: Int = 1, encodeLanes: Int? = nil, featureCacheBytes: Int = 0) {
            self.maxBatch = maxBatch
            self.encodeLanes = encodeLanes
            self.featureCacheBytes = featureCacheBytes
        }
    }

    public let model: BlipModel
    public let tokenizer: WordPieceTokenizer
    public let imageLimits: ImageLimits
    public let generationLimits: GenerationLimits
    /// Pixels → the model's normalised input; internal so that `warmUp()` (WarmUp.swift) takes the same path.
    let normalizer: ImageNormalizer
    /// Runs every caption.
    public let loop: DecodeLoop
    /// Reused image features, when configured.
    public let featureCache: FeatureCache?

    public init(folder: ModelFolder, imageLimits: ImageLimits = .default, generationLimits: GenerationLimits = GenerationLimits(),
                precision: Precision = .float32, configuration: Configuration = Configuration()) throws {
        model = try BlipModel(folder: folder, precision: precision)
        tokenizer = try WordPieceTokenizer(folder: folder)
        let p = model.preprocessor
        normalizer = ImageNormalizer(imageSize: p.imageSize, mean: p.imageMean, std: p.imageStd, rescaleFactor: p.rescaleFactor)
        self.imageLimits = imageLimits
        self.generationLimits = generationLimits
        featureCache = configuration.featureCacheBytes > 0 ? FeatureCache(capacityBytes: configuration.featureCacheBytes) : nil
        loop = DecodeLoop(
            engine: .init(model: model, tokenizer: tokenizer, normalizer: normalizer, imageLimits: imageLimits,
                          cache: featureCache, cacheContext: "\(model.identity) \(p)"),
            configuration: .init(maxBatch: configuration.maxBatch, encodeLanes: configuration.encodeLanes))
    }

    /// The decoder's input before any generated token: `[DEC]`, then the prompt's tokens. As in
    /// `BlipForConditionalGeneration.generate`, the tokenizer's `[CLS] … [SEP]` has `[CLS]` replaced
    /// by `[DEC]` and its last column dropped. An empty prompt is no prompt.
    public func prefix(prompt: String?) -> [Int32] {
        let bos = model.config.text.bosTokenID
        guard let prompt, !prompt.isEmpty else { return [bos] }
        var ids = tokenizer.encodeWithSpecialTokens(prompt)
        ids[0] = bos
        ids.removeLast()
        return ids.isEmpty ? [bos] : ids
    }

    /// Checks and tokenizes one prompt's parameters and builds its search for the loop.
    func prepare(_ parameters: GenerationParameters) throws -> DecodeLoop.PreparedPrompt {
        let parameters = try parameters.validated(maxPositions: model.config.text.maxPositionEmbeddings, limits: generationLimits)
        let prefix = self.prefix(prompt: parameters.prompt)
        // Each word is at most `maxTextBytes` long (validated), so tokenizing it is bounded too.
        var badWordIDs: [[Int32]] = []
        for word in parameters.badWords {
            let ids = tokenizer.encode(word)
            guard ids.count <= generationLimits.maxBadWordTokens else {
                throw ParameterError(parameter: "bad_words", allowed: "words of at most \(generationLimits.maxBadWordTokens) tokens",
                                     value: "a word of \(ids.count) tokens")
            }
            if !ids.isEmpty { badWordIDs.append(ids) }
        }
        // The longest the sequence can get, [DEC] and prompt included; it must fit the position table.
        let maxLength = parameters.lengthBounds(prefixLength: prefix.count).max
        let positions = model.config.text.maxPositionEmbeddings
        guard maxLength <= positions else {
            throw ParameterError(parameter: parameters.maxNewTokens == nil ? "max_length" : "max_new_tokens",
                                 allowed: "such that prompt + generated tokens fit in \(positions) positions (the prompt takes \(prefix.count))",
                                 value: "\(parameters.maxNewTokens ?? maxLength)")
        }
        let generator = Generator(eosTokenID: model.config.text.sepTokenID, padTokenID: model.config.text.padTokenID)
        let search = try generator.makeSearch(prefix: prefix, parameters: parameters, badWordIDs: badWordIDs,
                                              earlyStopping: parameters.earlyStopping ? .whenAllFinished : .heuristic,
                                              vocabularySize: model.config.text.vocabSize)
        return DecodeLoop.PreparedPrompt(parameters: parameters, prefixLength: prefix.count, maxLength: maxLength, search: search)
    }

    /// Queues a job on the loop.
    /// - Parameter completion: called once, on the loop's thread (keep it short), with one list of
    ///   candidates per prompt, or why there are none: `ImageError` (bad image), `CaptionJobError`
    ///   (deadline, cancellation).
    /// - Returns: the handle to cancel it with.
    /// - Throws: `ParameterError` or `GenerationError` for parameters out of range, and
    ///   ``CaptionJobError/noPrompts``, before anything is queued.
    public func submit(_ job: CaptionJob,
                       completion: @escaping @Sendable (Result<CaptionJobResult, any Error>) -> Void) throws -> CaptionJobHandle {
        guard !job.prompts.isEmpty else { throw CaptionJobError.noPrompts }
        let prompts = try job.prompts.map(prepare)
        return loop.submit(image: job.image, format: job.format, applyEXIFOrientation: job.applyEXIFOrientation,
                           prompts: prompts, deadline: job.deadline, onText: job.onText, completion: completion)
    }

    /// Cancels a submitted job (see `DecodeLoop.cancel(_:)`).
    public func cancel(_ handle: CaptionJobHandle) { loop.cancel(handle) }

    /// Captions one image with one prompt, waiting for the result (a job of one prompt on the loop).
    /// - Parameters:
    ///   - image: JPEG or PNG file bytes, or raw RGB8 pixels with `format: .rawRGB8(width:height:)`.
    ///   - format: nil to detect JPEG/PNG from the bytes.
    ///   - parameters: decoding parameters; validated here.
    ///   - applyEXIFOrientation: rotate/flip as the EXIF orientation tag says (transformers does not).
    /// - Throws: `ImageError` for bad images, `ParameterError` for parameters out of range.
    public func caption(image: [UInt8], format: ImageFormat? = nil, parameters: GenerationParameters = GenerationParameters(),
                        applyEXIFOrientation: Bool = true) throws -> CaptionResult {
        let job = CaptionJob(image: image, format: format, applyEXIFOrientation: applyEXIFOrientation, prompts: [parameters])
        let done = DispatchSemaphore(value: 0)
        let outcome = ResultBox()
        _ = try submit(job) { result in
            outcome.value = result
            done.signal()
        }
        done.wait()
        let result = try outcome.value!.get()
        return CaptionResult(candidates: result.captions[0], timings: result.timings)
    }
}

/// Hands a result from the loop's thread to a waiting one (the semaphore orders the accesses).
private final class ResultBox: @unchecked Sendable {
    var value: Result<CaptionJobResult, any Error>?
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
