import BLIPOptions

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
    /// Beams for beam search; 1 means greedy decoding (or plain sampling with `doSample`). Unset, it
    /// follows `doSample`: 3 to search, 1 to sample (``DecodingOption/defaultNumBeams(doSample:)``).
    public var numBeams: Int {
        get { beams ?? DecodingOption.defaultNumBeams(doSample: doSample) }
        set { beams = newValue }
    }
    /// `numBeams` as set, or `nil` to follow `doSample`.
    private var beams: Int? = nil
    /// Maximum generated tokens (final `[SEP]` included). Wins over `maxLength`.
    public var maxNewTokens: Int? = nil
    /// Minimum generated tokens before `[SEP]` may end the sequence. Wins over `minLength`.
    public var minNewTokens: Int? = nil
    /// Maximum length of the whole sequence; ``defaultMaxLength`` when neither `maxLength` nor `maxNewTokens` is given.
    public var maxLength: Int? = nil
    /// Minimum length of the whole sequence; ``defaultMinLength`` when neither `minLength` nor `minNewTokens` is given.
    public var minLength: Int? = nil
    /// Beam score = sum of log-probabilities / generated tokens ** lengthPenalty (> 0 favours long captions).
    public var lengthPenalty = Float(Self.tableDefault(.lengthPenalty).real!)
    /// Beam search stops as soon as `numBeams` sequences are finished (otherwise it stops when no
    /// running beam can still beat the worst finished one, transformers' heuristic).
    public var earlyStopping = Self.tableDefault(.earlyStopping).flag!
    /// Sequences to return, best first (beam search: at most `numBeams`; sampling: independent samples).
    public var numReturnSequences = Self.tableDefault(.numReturnSequences).count!
    /// Sample the next token instead of taking the most likely one.
    public var doSample = Self.tableDefault(.doSample).flag!
    /// Sampling temperature (> 0); logits are divided by it.
    public var temperature = Float(Self.tableDefault(.temperature).real!)
    /// Sampling keeps only the `topK` most likely tokens (ties at the boundary are kept); 0 disables.
    public var topK = Self.tableDefault(.topK).count!
    /// Sampling keeps the smallest set of most likely tokens whose probability reaches `topP` (nucleus); 1 disables.
    public var topP = Float(Self.tableDefault(.topP).real!)
    /// Seed for sampling; the same seed, parameters and model give the same output. `nil` picks a random seed.
    public var seed: UInt64? = nil
    /// Divides positive and multiplies negative scores of every token already in the sequence
    /// (`[DEC]` and prompt included); > 1 discourages repetition.
    public var repetitionPenalty = Float(Self.tableDefault(.repetitionPenalty).real!)
    /// Forbids repeating any n-gram of this size (prompt included); 0 disables.
    public var noRepeatNgramSize = Self.tableDefault(.noRepeatNgramSize).count!
    /// Words that must not be generated; each is tokenized and its token sequence forbidden.
    public var badWords = Self.tableDefault(.badWords).words!
    /// Text the caption must start with (BLIP's conditional captioning, e.g. "a picture of").
    public var prompt: String? = nil

    public init() {}

    /// Equal when every option has the same value (an unset `numBeams` equals the one it follows) and the prompts match.
    public static func == (a: Self, b: Self) -> Bool {
        a.prompt == b.prompt && DecodingOption.allCases.allSatisfy { a.value(of: $0) == b.value(of: $0) }
    }

    private static func tableDefault(_ option: DecodingOption) -> OptionValue { option.row.defaultValue! }

    /// The value of `option` as set here; `nil` for a length bound or seed left unset.
    public func value(of option: DecodingOption) -> OptionValue? {
        switch option {
        case .numBeams: .count(numBeams)
        case .maxNewTokens: maxNewTokens.map(OptionValue.count)
        case .minNewTokens: minNewTokens.map(OptionValue.count)
        case .maxLength: maxLength.map(OptionValue.count)
        case .minLength: minLength.map(OptionValue.count)
        case .lengthPenalty: .real(Double(lengthPenalty))
        case .repetitionPenalty: .real(Double(repetitionPenalty))
        case .noRepeatNgramSize: .count(noRepeatNgramSize)
        case .numReturnSequences: .count(numReturnSequences)
        case .earlyStopping: .flag(earlyStopping)
        case .doSample: .flag(doSample)
        case .temperature: .real(Double(temperature))
        case .topK: .count(topK)
        case .topP: .real(Double(topP))
        case .seed: seed.map(OptionValue.seed)
        case .badWords: .words(badWords)
        }
    }

    /// Sets `option`. Reals are narrowed to 32-bit floats by ``narrowed(_:parameter:)`` (which
    /// refuses what a Float cannot hold); a value of the wrong kind is refused by name.
    /// - Throws: `ParameterError` naming the option.
    public mutating func set(_ option: DecodingOption, to value: OptionValue) throws(ParameterError) {
        func real(_ v: OptionValue) throws(ParameterError) -> Float {
            guard let d = v.real else { throw ParameterError(parameter: option.rawValue, allowed: "a number", value: "\(v)") }
            return try Self.narrowed(d, parameter: option.rawValue)
        }
        func count(_ v: OptionValue) throws(ParameterError) -> Int {
            guard let c = v.count else { throw ParameterError(parameter: option.rawValue, allowed: "an integer", value: "\(v)") }
            return c
        }
        func flag(_ v: OptionValue) throws(ParameterError) -> Bool {
            guard let f = v.flag else { throw ParameterError(parameter: option.rawValue, allowed: "true or false", value: "\(v)") }
            return f
        }
        switch option {
        case .numBeams: numBeams = try count(value)
        case .maxNewTokens: maxNewTokens = try count(value)
        case .minNewTokens: minNewTokens = try count(value)
        case .maxLength: maxLength = try count(value)
        case .minLength: minLength = try count(value)
        case .lengthPenalty: lengthPenalty = try real(value)
        case .repetitionPenalty: repetitionPenalty = try real(value)
        case .noRepeatNgramSize: noRepeatNgramSize = try count(value)
        case .numReturnSequences: numReturnSequences = try count(value)
        case .earlyStopping: earlyStopping = try flag(value)
        case .doSample: doSample = try flag(value)
        case .temperature: temperature = try real(value)
        case .topK: topK = try count(value)
        case .topP: topP = try real(value)
        case .seed:
            guard let s = value.seed else { throw ParameterError(parameter: option.rawValue, allowed: "an unsigned 64-bit integer", value: "\(value)") }
            seed = s
        case .badWords:
            guard let w = value.words else { throw ParameterError(parameter: option.rawValue, allowed: "a list of words", value: "\(value)") }
            badWords = w
        }
    }

    // Coded with the options' field names (`num_beams`, …) and `prompt`; absent keys keep the defaults.
    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
        static let prompt = Key(stringValue: "prompt")
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        for option in DecodingOption.allCases {
            let key = Key(stringValue: option.rawValue)
            guard c.contains(key), try !c.decodeNil(forKey: key) else { continue }
            let value: OptionValue = switch option.row.kind {
            case .count: .count(try c.decode(Int.self, forKey: key))
            case .real: .real(Double(try c.decode(Float.self, forKey: key)))
            case .flag: .flag(try c.decode(Bool.self, forKey: key))
            case .seed: .seed(try c.decode(UInt64.self, forKey: key))
            case .words: .words(try c.decode([String].self, forKey: key))
            }
            try set(option, to: value)
        }
        prompt = try c.decodeIfPresent(String.self, forKey: .prompt)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        for option in DecodingOption.allCases where option != .numBeams || beams != nil {
            let key = Key(stringValue: option.rawValue)
            switch value(of: option) {
            case .count(let v)?: try c.encode(v, forKey: key)
            case .real(let v)?: try c.encode(Float(v), forKey: key)
            case .flag(let v)?: try c.encode(v, forKey: key)
            case .seed(let v)?: try c.encode(v, forKey: key)
            case .words(let v)?: try c.encode(v, forKey: key)
            case nil: break
            }
        }
        try c.encodeIfPresent(prompt, forKey: .prompt)
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
        let optionLimits = OptionLimits(maxBeams: limits.maxBeams, maxTokens: maxPositions,
                                        maxBadWords: limits.maxBadWords, maxTextBytes: limits.maxTextBytes)
        try DecodingOption.numBeams.check(.count(numBeams), limits: optionLimits)
        // The rules between options, which the table's per-option ranges cannot state.
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
        for option in DecodingOption.allCases where option != .numBeams && option != .numReturnSequences {
            if let value = value(of: option) { try option.check(value, limits: optionLimits) }
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
    public static let defaultMaxLength = tableDefault(.maxLength).count!
    /// The shortest whole sequence when neither `minLength` nor `minNewTokens` is given (the COCO setting).
    public static let defaultMinLength = tableDefault(.minLength).count!

    /// The bounds on the whole sequence (`[DEC]` and prompt included) for a prefix of
    /// `prefixLength` tokens: the new-token forms win over the total ones, as in transformers;
    /// with neither, ``defaultMaxLength`` / ``defaultMinLength``.
    public func lengthBounds(prefixLength: Int) -> (max: Int, min: Int) {
        (maxNewTokens.map { prefixLength + $0 } ?? maxLength ?? Self.defaultMaxLength,
         minNewTokens.map { prefixLength + $0 } ?? minLength ?? Self.defaultMinLength)
    }

}
