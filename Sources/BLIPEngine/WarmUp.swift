extension Captioner {
    /// Image tokens the warm-up's vision encoder runs on: the class token and the first 4 patches
    /// (or all of a smaller model's). Any count reads every weight; a handful keeps the products on
    /// the weight-streaming kernel (up to `Linear.skinnyRows` rows), which reads each weight once
    /// with little arithmetic: on BLIP-large the warm-up took ~0.35 s with 5 tokens, ~0.5 s with
    /// 17 and ~0.65 s with 33 (packed for sgemm). sgemm still runs, in the patch embedding.
    static func warmUpImageTokens(_ config: BlipVisionConfig) -> Int {
        min(5, Linear.skinnyRows, config.tokenCount)
    }

    /// New tokens the warm-up generates: a first step on one row, then one on every beam.
    static let warmUpNewTokens = 2

    /// Runs one cut-down caption through every stage, so that a service can report ready without
    /// its first caller paying for the first touch of the weights and code.
    ///
    /// What runs: a synthetic 64×64 raw RGB8 image through `ImageDecoder`, the bicubic resize and the
    /// normaliser; the patch embedding of every patch, then every vision encoder layer and the
    /// post-layernorm on the first `warmUpImageTokens` tokens (5) instead of all of them (577 on
    /// BLIP-large); the cross-attention key/value projection of every decoder layer for those
    /// tokens; then beam search (3 beams, or fewer
    /// if `generationLimits` allows fewer) for 2 new tokens: a decoder step on one row, a beam
    /// reorder to three rows, a step on three rows, the LM head each time, and the tokenizer's decode.
    ///
    /// Why: the weights are memory-mapped, so the first pass over them page-faults (1.8 GB for
    /// BLIP-large, even from a warm page cache), and code and buffers have first-use costs. Every
    /// layer runs and each product reads its whole weight matrix, so every weight page is touched
    /// (bar the position-embedding rows of later text positions) and the kernels a default caption
    /// uses (sgemm, the weight-streaming product, attention, layer norms, GELU, softmax) run once,
    /// at a small fraction of a caption's cost: ~0.35 s on BLIP-large (~0.25 s when repeated, the
    /// rest is the first touch), against ~5 s for a complete caption. Not exercised: JPEG/PNG decoding,
    /// sampling, the engine loop's thread, and the shared scratch of steps batched across concurrent
    /// captions (allocated on first use).
    ///
    /// - Returns: the best beam, for inspection. It is not a meaningful caption (the image is a
    ///   pattern and the decoder sees a fraction of it); its token ids are `[DEC]` plus at most 2.
    /// - Throws: `ImageError`, `GenerationError` or `DecoderSessionError`; none is expected from a
    ///   model that loaded, so any of them means the engine cannot caption.
    public func warmUp() throws -> CaptionCandidate {
        // The synthetic image is not a request: the service's image limits do not apply to it.
        let side = 64
        let bytes = (0..<(side * side * 3)).map { UInt8(truncatingIfNeeded: $0 &* 37) }
        let decoded = try ImageDecoder.decode(bytes, format: .rawRGB8(width: side, height: side))
        let s = model.preprocessor.imageSize
        let pixels = FloatBuffer(count: 3 * s * s)
        normalizer.pixelValues(from: decoded, into: UnsafeMutableBufferPointer(start: pixels.pointer, count: pixels.count))

        var parameters = GenerationParameters()
        parameters.numBeams = min(3, max(1, generationLimits.maxBeams))
        parameters.maxNewTokens = Self.warmUpNewTokens
        let prefix = self.prefix(prompt: nil)

        let vc = model.config.vision
        let tokens = Self.warmUpImageTokens(vc)
        let features = FloatBuffer(count: tokens * vc.hiddenSize)
        model.vision.encode(pixels: pixels.pointer, into: features.pointer, state: VisionState(config: vc), tokens: tokens)
        let session = model.makeSession(memory: model.makeMemory(features: features.pointer, imageTokens: tokens),
                                        maxRows: parameters.numBeams, maxLength: prefix.count + Self.warmUpNewTokens)
        let generator = Generator(eosTokenID: model.config.text.sepTokenID, padTokenID: model.config.text.padTokenID)
        let best = try generator.generate(prefix: prefix, parameters: parameters, badWordIDs: [], model: session, checkpoint: {})[0]
        return CaptionCandidate(text: tokenizer.decode(best.tokenIDs), tokenIDs: best.tokenIDs, score: best.score, finishReason: best.finishReason,
                                generatedTokens: best.tokenIDs.count - prefix.count)
    }
}
