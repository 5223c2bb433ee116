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

    /// Generates the sequences that `parameters` ask for, driving the search against `model` one
    /// step at a time (the engine loop advances searches itself; see ``makeSearch``).
    /// - Parameters:
    ///   - prefix: `[DEC]` followed by the prompt's token ids (without the tokenizer's final `[SEP]`).
    ///   - parameters: validated parameters (`GenerationParameters.validated`); `badWords` and `prompt`
    ///     are not read here, their token ids come in `prefix` and `badWordIDs`.
    ///   - badWordIDs: the tokenized bad words; each sequence is forbidden.
    ///   - model: the decoder, fresh (no rows yet); it is left in an unspecified state.
    ///   - checkpoint: called before every decoder step; throw from it to stop.
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
        let search = try makeSearch(prefix: prefix, parameters: parameters, badWordIDs: badWordIDs,
                                    earlyStopping: earlyStopping, vocabularySize: model.vocabularySize)
        var next = search.start()
        while true {
            switch next {
            case .done(let candidates):
                return candidates
            case .step(let tokens, let reorder):
                try checkpoint()
                if let reorder { model.reorder(reorder) }
                next = search.advance(try checkedStep(model, tokens))
            }
        }
    }

    /// The search `parameters` ask for, checked against the vocabulary: greedy decoding or sampling
    /// (one beam), or beam search (and beam sampling).
    /// - Throws: `GenerationError` for parameters or token ids the algorithms cannot take.
    func makeSearch(prefix: [Int32], parameters: GenerationParameters, badWordIDs: [[Int32]],
                    earlyStopping: BeamEarlyStopping, vocabularySize: Int) throws(GenerationError) -> any DecodingSearch {
        do {
            _ = try parameters.validated(maxPositions: Int(Int32.max), limits: .unlimited)
        } catch {
            throw GenerationError.invalidParameters(error)
        }
        guard !prefix.isEmpty else { throw GenerationError.emptyPrefix }
        for token in prefix + badWordIDs.joined() where !(0..<Int32(clamping: vocabularySize)).contains(token) {
            throw GenerationError.tokenOutOfRange(token: token, vocabularySize: vocabularySize)
        }
        if badWordIDs.contains(where: \.isEmpty) { throw GenerationError.emptyBadWord }
        guard (0..<vocabularySize).contains(Int(eosTokenID)) else {
            throw GenerationError.tokenOutOfRange(token: eosTokenID, vocabularySize: vocabularySize)
        }

        let lengths = parameters.lengthBounds(prefixLength: prefix.count)
        guard prefix.count < lengths.max else {
            throw GenerationError.prefixTooLong(length: prefix.count, maxLength: lengths.max)
        }
        let processing = LogitsProcessing(
            repetitionPenalty: parameters.repetitionPenalty, noRepeatNgramSize: parameters.noRepeatNgramSize,
            badWordIDs: badWordIDs, minLength: lengths.min, eosTokenID: eosTokenID)
        let warping = parameters.doSample
            ? LogitsWarping(temperature: parameters.temperature, topK: parameters.topK, topP: parameters.topP,
                            minTokensToKeep: parameters.numBeams > 1 ? 2 : 1)
            : nil
        let random = Xoshiro256StarStar(seed: parameters.seed ?? UInt64.random(in: .min ... .max))

        if parameters.numBeams == 1 {
            return SampleSearch(
                prefix: prefix, rows: parameters.numReturnSequences, maxLength: lengths.max, eosTokenID: eosTokenID,
                processing: processing, warping: warping, vocabularySize: vocabularySize, random: random)
        }
        return BeamSearch(
            prefix: prefix, numBeams: parameters.numBeams, numReturnSequences: parameters.numReturnSequences,
            lengthPenalty: parameters.lengthPenalty, earlyStopping: earlyStopping, maxLength: lengths.max,
            eosTokenID: eosTokenID, processing: processing, warping: warping, vocabularySize: vocabularySize,
            random: random)
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
