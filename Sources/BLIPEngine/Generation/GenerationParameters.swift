/// How to generate a caption. The defaults are the BLIP paper's COCO setting: beam search with 3 beams,
/// at most 20 and at least 5 tokens in the whole sequence (`[DEC]` and prompt included).
///
/// The semantics are those of transformers' `GenerationConfig`. Lengths come in two forms:
/// `maxLength`/`minLength` count the whole sequence including the `[DEC]` token and the prompt;
/// `maxNewTokens`/`minNewTokens` count generated tokens including a final `[SEP]`. The new-token form
/// wins when both are given. When neither form is given the maximum is 20 and the minimum 5 in total
/// (transformers' own defaults would be 20 new tokens and no minimum).
///
/// Coded with the Hugging Face names (`num_beams`, `max_new_tokens`, …); absent keys keep the defaults.
public struct GenerationParameters: Sendable, Codable, Equatable {
    /// Beams for beam search; 1 means greedy decoding (or plain sampling with `doSample`).
    public var numBeams = 3
    /// Maximum generated tokens (final `[SEP]` included). Wins over `maxLength`.
    public var maxNewTokens: Int? = nil
    /// Minimum generated tokens before `[SEP]` may end the sequence. Wins over `minLength`.
    public var minNewTokens: Int? = nil
    /// Maximum length of the whole sequence; 20 when neither `maxLength` nor `maxNewTokens` is given.
    public var maxLength: Int? = nil
    /// Minimum length of the whole sequence; 5 when neither `minLength` nor `minNewTokens` is given.
    public var minLength: Int? = nil
    /// Beam score = sum of log-probabilities / generated tokens ** lengthPenalty (> 0 favours long captions).
    public var lengthPenalty: Float = 1
    /// Beam search stops as soon as `numBeams` sequences are finished (otherwise it stops when no
    /// running beam can still beat the worst finished one, transformers' heuristic).
    public var earlyStopping = false
    /// Sequences to return, best first (beam search: at most `numBeams`; sampling: independent samples).
    public var numReturnSequences = 1
    /// Sample the next token instead of taking the most likely one.
    public var doSample = false
    /// Sampling temperature (> 0); logits are divided by it.
    public var temperature: Float = 1
    /// Sampling keeps only the `topK` most likely tokens (ties at the boundary are kept); 0 disables.
    public var topK = 50
    /// Sampling keeps the smallest set of most likely tokens whose probability reaches `topP` (nucleus); 1 disables.
    public var topP: Float = 1
    /// Seed for sampling; the same seed, parameters and model give the same output. `nil` picks a random seed.
    public var seed: UInt64? = nil
    /// Divides positive and multiplies negative scores of every token already in the sequence
    /// (`[DEC]` and prompt included); > 1 discourages repetition.
    public var repetitionPenalty: Float = 1
    /// Forbids repeating any n-gram of this size (prompt included); 0 disables.
    public var noRepeatNgramSize = 0
    /// Words that must not be generated; each is tokenized and its token sequence forbidden.
    public var badWords: [String] = []
    /// Text the caption must start with (BLIP's conditional captioning, e.g. "a picture of").
    public var prompt: String? = nil

    public init() {}

    enum CodingKeys: String, CodingKey {
        case numBeams = "num_beams"
        case maxNewTokens = "max_new_tokens"
        case minNewTokens = "min_new_tokens"
        case maxLength = "max_length"
        case minLength = "min_length"
        case lengthPenalty = "length_penalty"
        case earlyStopping = "early_stopping"
        case numReturnSequences = "num_return_sequences"
        case doSample = "do_sample"
        case temperature
        case topK = "top_k"
        case topP = "top_p"
        case seed
        case repetitionPenalty = "repetition_penalty"
        case noRepeatNgramSize = "no_repeat_ngram_size"
        case badWords = "bad_words"
        case prompt
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = GenerationParameters()
        numBeams = try c.decodeIfPresent(Int.self, forKey: .numBeams) ?? defaults.numBeams
        maxNewTokens = try c.decodeIfPresent(Int.self, forKey: .maxNewTokens)
        minNewTokens = try c.decodeIfPresent(Int.self, forKey: .minNewTokens)
        maxLength = try c.decodeIfPresent(Int.self, forKey: .maxLength)
        minLength = try c.decodeIfPresent(Int.self, forKey: .minLength)
        lengthPenalty = try c.decodeIfPresent(Float.self, forKey: .lengthPenalty) ?? defaults.lengthPenalty
        earlyStopping = try c.decodeIfPresent(Bool.self, forKey: .earlyStopping) ?? defaults.earlyStopping
        numReturnSequences = try c.decodeIfPresent(Int.self, forKey: .numReturnSequences) ?? defaults.numReturnSequences
        doSample = try c.decodeIfPresent(Bool.self, forKey: .doSample) ?? defaults.doSample
        temperature = try c.decodeIfPresent(Float.self, forKey: .temperature) ?? defaults.temperature
        topK = try c.decodeIfPresent(Int.self, forKey: .topK) ?? defaults.topK
        topP = try c.decodeIfPresent(Float.self, forKey: .topP) ?? defaults.topP
        seed = try c.decodeIfPresent(UInt64.self, forKey: .seed)
        repetitionPenalty = try c.decodeIfPresent(Float.self, forKey: .repetitionPenalty) ?? defaults.repetitionPenalty
        noRepeatNgramSize = try c.decodeIfPresent(Int.self, forKey: .noRepeatNgramSize) ?? defaults.noRepeatNgramSize
        badWords = try c.decodeIfPresent([String].self, forKey: .badWords) ?? defaults.badWords
        prompt = try c.decodeIfPresent(String.self, forKey: .prompt)
    }

    /// Greedy decoding (one beam, no sampling): transformers allows only one returned sequence.
    var isGreedy: Bool { numBeams == 1 && !doSample }

    /// Whether the search makes one sequence token by token, each token final once chosen (greedy
    /// decoding or one sample), so its text can be handed out as it grows; beam search reorders.
    public var streamsText: Bool { numBeams == 1 && numReturnSequences == 1 }

    /// Checks every parameter against what the algorithms accept and the service limits.
    /// - Parameters:
    ///   - maxPositions: the decoder's position-embedding count; the whole sequence must fit in it.
    ///   - limits: the service limits.
    /// - Returns: the parameters, unchanged.
    /// - Throws: `ParameterError` naming the first offending parameter and its allowed range.
    public func validated(maxPositions: Int, limits: GenerationLimits) throws(ParameterError) -> GenerationParameters {
        func check(_ ok: Bool, _ parameter: String, _ allowed: String, _ value: Any) throws(ParameterError) {
            if !ok { throw ParameterError(parameter: parameter, allowed: allowed, value: "\(value)") }
        }
        let maxBeams = max(1, limits.maxBeams)
        try check((1...maxBeams).contains(numBeams), "num_beams", "in 1...\(maxBeams)", numBeams)
        if isGreedy {
            // transformers: "Greedy methods (do_sample != True) without beam search do not support
            // `num_return_sequences` different than 1".
            try check(numReturnSequences == 1, "num_return_sequences", "1 for greedy decoding (num_beams 1 without do_sample)",
                      numReturnSequences)
        } else if numBeams > 1 {
            try check((1...numBeams).contains(numReturnSequences), "num_return_sequences",
                      "in 1...num_beams (\(numBeams))", numReturnSequences)
        } else {
            let most = max(1, limits.maxReturnSequences)
            try check((1...most).contains(numReturnSequences), "num_return_sequences", "in 1...\(most) when sampling",
                      numReturnSequences)
        }
        // The shortest prefix is [DEC] alone, so at most maxPositions - 1 tokens can be generated.
        let positions = max(2, maxPositions)
        if let maxNewTokens {
            try check((1...positions - 1).contains(maxNewTokens), "max_new_tokens", "in 1...\(positions - 1)", maxNewTokens)
        }
        if let maxLength {
            try check((2...positions).contains(maxLength), "max_length",
                      "in 2...\(positions) (the whole sequence, [DEC] and prompt included)", maxLength)
        }
        if let minNewTokens {
            try check((0...positions - 1).contains(minNewTokens), "min_new_tokens", "in 0...\(positions - 1)", minNewTokens)
        }
        if let minLength {
            try check((0...positions).contains(minLength), "min_length", "in 0...\(positions)", minLength)
        }
        try check(lengthPenalty.isFinite, "length_penalty", "a finite number", lengthPenalty)
        try check(temperature.isFinite && temperature > 0, "temperature", "a finite number > 0", temperature)
        try check(topK >= 0, "top_k", ">= 0 (0 disables top-k)", topK)
        try check(topP > 0 && topP <= 1, "top_p", "in (0, 1] (1 disables top-p)", topP)
        try check(repetitionPenalty.isFinite && repetitionPenalty > 0, "repetition_penalty",
                  "a finite number > 0 (1 disables it)", repetitionPenalty)
        // Subnormal floats are refused too: a subnormal temperature divides every logit into ±∞ or
        // NaN, and none of these has a meaningful value that small.
        let smallest = "at least \(Float.leastNormalMagnitude) (the smallest normal 32-bit float)"
        try check(lengthPenalty == 0 || lengthPenalty.isNormal, "length_penalty", "0 or " + smallest + " in magnitude", lengthPenalty)
        try check(temperature.isNormal, "temperature", smallest, temperature)
        try check(topP.isNormal, "top_p", smallest, topP)
        try check(repetitionPenalty.isNormal, "repetition_penalty", smallest, repetitionPenalty)
        try check((0...positions).contains(noRepeatNgramSize), "no_repeat_ngram_size",
                  "in 0...\(positions) (0 disables it)", noRepeatNgramSize)
        try check(badWords.count <= limits.maxBadWords, "bad_words", "at most \(limits.maxBadWords) words",
                  "\(badWords.count) words")
        // Bytes first (O(1) for native strings): nothing below looks at more than the limit.
        for word in badWords {
            let bytes = word.utf8.count
            try check(bytes <= limits.maxTextBytes, "bad_words",
                      "words of at most \(limits.maxTextBytes) UTF-8 bytes", "a word of \(bytes) bytes")
            try check(!word.allSatisfy(\.isWhitespace), "bad_words", "non-empty words", "\"\(word)\"")
        }
        if let prompt {
            let bytes = prompt.utf8.count
            try check(bytes <= limits.maxTextBytes, "prompt",
                      "at most \(limits.maxTextBytes) UTF-8 bytes", "\(bytes) bytes")
        }
        return self
    }
}

extension GenerationParameters {
    /// A wire option (a double) as the engine's 32-bit float, refusing what a Float cannot hold
    /// faithfully: non-finite values, values beyond Float's range, and non-zero values that would
    /// become subnormal or zero (1e-300 is not "0", and 1.4e-45 is not a usable temperature).
    /// Ranges are checked afterwards by ``validated(maxPositions:limits:)``.
    /// - Throws: `ParameterError` naming `parameter`, with the value as it arrived.
    public static func narrowed(_ value: Double, parameter: String) throws(ParameterError) -> Float {
        let narrow = Float(value)
        guard value.isFinite, narrow.isFinite else {
            throw ParameterError(parameter: parameter, allowed: "a finite number within ±\(Float.greatestFiniteMagnitude)",
                                 value: "\(value)")
        }
        guard value == 0 || narrow.isNormal else {
            throw ParameterError(parameter: parameter,
                                 allowed: "0 or at least \(Float.leastNormalMagnitude) in magnitude (32-bit floats hold nothing smaller exactly enough)",
                                 value: "\(value)")
        }
        return narrow
    }

    /// The longest whole sequence when neither `maxLength` nor `maxNewTokens` is given (the COCO setting).
    public static let defaultMaxLength = 20
    /// The shortest whole sequence when neither `minLength` nor `minNewTokens` is given (the COCO setting).
    public static let defaultMinLength = 5

    /// The bounds on the whole sequence (`[DEC]` and prompt included) for a prefix of
    /// `prefixLength` tokens: the new-token forms win over the total ones, as in transformers;
    /// with neither, ``defaultMaxLength`` / ``defaultMinLength``.
    public func lengthBounds(prefixLength: Int) -> (max: Int, min: Int) {
        (maxNewTokens.map { prefixLength + $0 } ?? maxLength ?? Self.defaultMaxLength,
         minNewTokens.map { prefixLength + $0 } ?? minLength ?? Self.defaultMinLength)
    }

    /// `num_beams` when the caller leaves it unset: the COCO setting's 3 beams for search, 1 for
    /// sampling (3 would silently turn sampling into beam sampling).
    public static func defaultNumBeams(doSample: Bool) -> Int { doSample ? 1 : 3 }
}
