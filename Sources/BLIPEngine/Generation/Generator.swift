/// Generates token sequences from a `TokenStepper` with transformers 5.24's algorithms as
/// `BlipForConditionalGeneration.generate` uses them: greedy decoding, multinomial sampling, beam search
/// and beam sampling (`GenerationMixin._sample` and `_beam_search`), with the logits processors BLIP's
/// parameters enable. Greedy decoding and beam search are token-identical to transformers (see
/// `Tests/BLIPEngineTests/GenerationReferenceTests.swift`); sampling uses its own seeded generator.
public struct Generator: Sendable {
    /// Ends a sequence (`[SEP]` = 102 for BLIP).
    public let eosTokenID: Int32
    /// transformers pads finished rows with it; the candidates returned here are never padded, so it is
    /// only kept to describe the decoder (`[PAD]` = 0 for BLIP).
    public let padTokenID: Int32

    public init(eosTokenID: Int32, padTokenID: Int32) {
        self.eosTokenID = eosTokenID
        self.padTokenID = padTokenID
    }

    /// Generates the sequences that `parameters` ask for.
    /// - Parameters:
    ///   - prefix: `[DEC]` followed by the prompt's token ids (without the tokenizer's final `[SEP]`).
    ///   - parameters: validated parameters (`GenerationParameters.validated`); `badWords` and `prompt`
    ///     are not read here, their token ids come in `prefix` and `badWordIDs`.
    ///   - badWordIDs: the tokenized bad words; each sequence is forbidden.
    ///   - model: the decoder, fresh (no rows yet); it is left in an unspecified state.
    ///   - checkpoint: called before every decoder step; throw from it to stop (deadline, cancellation).
    /// - Returns: `numReturnSequences` candidates, best first for beam search, in sampling order otherwise.
    /// - Throws: `GenerationError`, or whatever `model` and `checkpoint` throw.
    public func generate(prefix: [Int32], parameters: GenerationParameters, badWordIDs: [[Int32]],
                         model: TokenStepper, checkpoint: () throws -> Void) throws -> [Candidate] {
        try generate(prefix: prefix, parameters: parameters, badWordIDs: badWordIDs,
                     earlyStopping: parameters.earlyStopping ? .whenAllFinished : .heuristic,
                     model: model, checkpoint: checkpoint)
    }

    /// `generate` with transformers' third early-stopping mode, `"never"`, reachable (for the reference tests).
    func generate(prefix: [Int32], parameters: GenerationParameters, badWordIDs: [[Int32]],
                  earlyStopping: BeamEarlyStopping, model: TokenStepper,
                  checkpoint: () throws -> Void) throws -> [Candidate] {
        do {
            _ = try parameters.validated(maxPositions: Int(Int32.max), limits: .unlimited)
        } catch {
            throw GenerationError.invalidParameters(error)
        }
        let vocabularySize = model.vocabularySize
        guard !prefix.isEmpty else { throw GenerationError.emptyPrefix }
        for token in prefix + badWordIDs.joined() where !(0..<Int32(clamping: vocabularySize)).contains(token) {
            throw GenerationError.tokenOutOfRange(token: token, vocabularySize: vocabularySize)
        }
        if badWordIDs.contains(where: \.isEmpty) { throw GenerationError.emptyBadWord }
        guard (0..<vocabularySize).contains(Int(eosTokenID)) else {
            throw GenerationError.tokenOutOfRange(token: eosTokenID, vocabularySize: vocabularySize)
        }

        // transformers: max_new_tokens wins over max_length; min_new_tokens over min_length. Our defaults
        // when neither is given are the paper's 20 / 5 in total (transformers': 20 new tokens, minimum 0).
        let maxLength = parameters.maxNewTokens.map { prefix.count + $0 } ?? parameters.maxLength ?? 20
        let minLength = parameters.minNewTokens.map { prefix.count + $0 } ?? parameters.minLength ?? 5
        guard prefix.count < maxLength else {
            throw GenerationError.prefixTooLong(length: prefix.count, maxLength: maxLength)
        }
        let processing = LogitsProcessing(
            repetitionPenalty: parameters.repetitionPenalty, noRepeatNgramSize: parameters.noRepeatNgramSize,
            badWordIDs: badWordIDs, minLength: minLength, eosTokenID: eosTokenID)
        let warping = parameters.doSample
            ? LogitsWarping(temperature: parameters.temperature, topK: parameters.topK, topP: parameters.topP,
                            minTokensToKeep: parameters.numBeams > 1 ? 2 : 1)
            : nil
        var random = Xoshiro256StarStar(seed: parameters.seed ?? UInt64.random(in: .min ... .max))

        if parameters.numBeams == 1 {
            let search = SampleSearch(
                rows: parameters.numReturnSequences, maxLength: maxLength, eosTokenID: eosTokenID,
                processing: processing, warping: warping)
            return try search.run(prefix: prefix, model: model, random: &random, checkpoint: checkpoint)
        }
        let search = BeamSearch(
            numBeams: parameters.numBeams, numReturnSequences: parameters.numReturnSequences,
            lengthPenalty: parameters.lengthPenalty, earlyStopping: earlyStopping, maxLength: maxLength,
            eosTokenID: eosTokenID, processing: processing, warping: warping)
        return try search.run(prefix: prefix, model: model, random: &random, checkpoint: checkpoint)
    }
}

/// One decoder step with the size of its answer checked.
func checkedStep(_ model: TokenStepper, _ tokens: [Int32]) throws -> UnsafeBufferPointer<Float> {
    let logits = try model.step(tokens)
    let expected = tokens.count * model.vocabularySize
    guard logits.count == expected else {
        throw GenerationError.logitsSizeMismatch(expected: expected, got: logits.count)
    }
    return logits
}

/// Feeds the prefix one token per step on one row and returns the logits after its last token.
func feedPrefix(_ prefix: [Int32], _ model: TokenStepper,
                _ checkpoint: () throws -> Void) throws -> UnsafeBufferPointer<Float> {
    var logits = UnsafeBufferPointer<Float>(start: nil, count: 0)
    for token in prefix {
        try checkpoint()
        logits = try checkedStep(model, [token])
    }
    return logits
}
