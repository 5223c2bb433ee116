import BlipProtoC

/// Generation parameters of a caption request, with Hugging Face `generate()` meanings.
///
/// Every field is optional: `nil` means "the server's default" (``documentedDefaults``, reported
/// by `InfoResponse.defaults`), so a client never has to restate one. Lengths count tokens:
/// `maxLength`/`minLength` the whole sequence including `[DEC]` and the prompt,
/// `maxNewTokens`/`minNewTokens` the generated tokens including the final `[SEP]`.
public struct DecodingOptions: Sendable, Hashable {
    /// Beams for beam search; 1 is greedy (or plain sampling). Default 3.
    public var numBeams: UInt32?
    /// Generated tokens at most; overrides ``maxLength`` when set.
    public var maxNewTokens: UInt32?
    /// Generated tokens at least; overrides ``minLength`` when set.
    public var minNewTokens: UInt32?
    /// Sequence length at most. Default 20 (when ``maxNewTokens`` is unset).
    public var maxLength: UInt32?
    /// Sequence length at least. Default 5 (when ``minNewTokens`` is unset).
    public var minLength: UInt32?
    /// Beam scores are divided by (generated tokens)^lengthPenalty. Default 1.
    public var lengthPenalty: Double?
    /// CTRL repetition penalty on tokens already in the sequence; 1 is off. Default 1.
    public var repetitionPenalty: Double?
    /// Forbids repeating any n-gram of this size; 0 is off. Default 0.
    public var noRepeatNgramSize: UInt32?
    /// Candidates returned, best first; at most ``numBeams`` when not sampling. Default 1.
    public var numReturnSequences: UInt32?
    /// Beam search stops as soon as `numBeams` hypotheses are finished. Default false.
    public var earlyStopping: Bool?
    /// Sample instead of taking the most likely tokens. Default false.
    public var doSample: Bool?
    /// Sampling temperature, > 0. Default 1.
    public var temperature: Double?
    /// Sampling keeps the k most likely tokens; 0 is off. Default 50.
    public var topK: UInt32?
    /// Sampling keeps the smallest set of tokens whose probability reaches p; 1 is off. Default 1.
    public var topP: Double?
    /// Seed of the sampler, for repeatable samples. Default: chosen by the server.
    public var seed: UInt64?
    /// Words that must not be generated (each tokenized without special tokens). Default none.
    public var badWords: [String]

    /// All fields unset: the server's defaults apply.
    public init(
        numBeams: UInt32? = nil, maxNewTokens: UInt32? = nil, minNewTokens: UInt32? = nil,
        maxLength: UInt32? = nil, minLength: UInt32? = nil, lengthPenalty: Double? = nil,
        repetitionPenalty: Double? = nil, noRepeatNgramSize: UInt32? = nil,
        numReturnSequences: UInt32? = nil, earlyStopping: Bool? = nil, doSample: Bool? = nil,
        temperature: Double? = nil, topK: UInt32? = nil, topP: Double? = nil, seed: UInt64? = nil,
        badWords: [String] = []
    ) {
        self.numBeams = numBeams
        self.maxNewTokens = maxNewTokens
        self.minNewTokens = minNewTokens
        self.maxLength = maxLength
        self.minLength = minLength
        self.lengthPenalty = lengthPenalty
        self.repetitionPenalty = repetitionPenalty
        self.noRepeatNgramSize = noRepeatNgramSize
        self.numReturnSequences = numReturnSequences
        self.earlyStopping = earlyStopping
        self.doSample = doSample
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.seed = seed
        self.badWords = badWords
    }

    /// The defaults docs/protocol.md promises, read from the table (``DecodingOption``'s rows): BLIP's
    /// COCO captioning setting, beam 3, total length 5…20. The options without a default
    /// (``maxNewTokens``, ``minNewTokens``, ``seed``: the server picks a seed per request) stay unset.
    public static let documentedDefaults: DecodingOptions = {
        var options = DecodingOptions()
        for option in DecodingOption.allCases {
            if let value = option.row.defaultValue { options[option] = value }
        }
        return options
    }()

    /// The value of `option` (`nil`: unset; `bad_words` is unset when empty). Setting a value of
    /// another kind than the row's, or a count outside `uint32`, is a programming error.
    public subscript(option: DecodingOption) -> OptionValue? {
        get {
            switch option {
            case .numBeams: numBeams.map { .count(Int($0)) }
            case .maxNewTokens: maxNewTokens.map { .count(Int($0)) }
            case .minNewTokens: minNewTokens.map { .count(Int($0)) }
            case .maxLength: maxLength.map { .count(Int($0)) }
            case .minLength: minLength.map { .count(Int($0)) }
            case .lengthPenalty: lengthPenalty.map(OptionValue.real)
            case .repetitionPenalty: repetitionPenalty.map(OptionValue.real)
            case .noRepeatNgramSize: noRepeatNgramSize.map { .count(Int($0)) }
            case .numReturnSequences: numReturnSequences.map { .count(Int($0)) }
            case .earlyStopping: earlyStopping.map(OptionValue.flag)
            case .doSample: doSample.map(OptionValue.flag)
            case .temperature: temperature.map(OptionValue.real)
            case .topK: topK.map { .count(Int($0)) }
            case .topP: topP.map(OptionValue.real)
            case .seed: seed.map(OptionValue.seed)
            case .badWords: badWords.isEmpty ? nil : .words(badWords)
            }
        }
        set {
            func count() -> UInt32? { newValue.map { UInt32($0.count!) } }
            switch option {
            case .numBeams: numBeams = count()
            case .maxNewTokens: maxNewTokens = count()
            case .minNewTokens: minNewTokens = count()
            case .maxLength: maxLength = count()
            case .minLength: minLength = count()
            case .lengthPenalty: lengthPenalty = newValue.map { $0.real! }
            case .repetitionPenalty: repetitionPenalty = newValue.map { $0.real! }
            case .noRepeatNgramSize: noRepeatNgramSize = count()
            case .numReturnSequences: numReturnSequences = count()
            case .earlyStopping: earlyStopping = newValue.map { $0.flag! }
            case .doSample: doSample = newValue.map { $0.flag! }
            case .temperature: temperature = newValue.map { $0.real! }
            case .topK: topK = count()
            case .topP: topP = newValue.map { $0.real! }
            case .seed: seed = newValue.map { $0.seed! }
            case .badWords: badWords = newValue.map { $0.words! } ?? []
            }
        }
    }

    /// These options with every unset field taken from `defaults`, except that a set
    /// ``maxNewTokens`` (``minNewTokens``) keeps ``maxLength`` (``minLength``) unset, because
    /// the new-token bound replaces the length bound rather than adding to it.
    public func resolved(over defaults: DecodingOptions = .documentedDefaults) -> DecodingOptions {
        var options = self
        options.numBeams = numBeams ?? defaults.numBeams
        options.maxNewTokens = maxNewTokens ?? (maxLength == nil ? defaults.maxNewTokens : nil)
        options.minNewTokens = minNewTokens ?? (minLength == nil ? defaults.minNewTokens : nil)
        options.maxLength = maxLength ?? (options.maxNewTokens == nil ? defaults.maxLength : nil)
        options.minLength = minLength ?? (options.minNewTokens == nil ? defaults.minLength : nil)
        options.lengthPenalty = lengthPenalty ?? defaults.lengthPenalty
        options.repetitionPenalty = repetitionPenalty ?? defaults.repetitionPenalty
        options.noRepeatNgramSize = noRepeatNgramSize ?? defaults.noRepeatNgramSize
        options.numReturnSequences = numReturnSequences ?? defaults.numReturnSequences
        options.earlyStopping = earlyStopping ?? defaults.earlyStopping
        options.doSample = doSample ?? defaults.doSample
        options.temperature = temperature ?? defaults.temperature
        options.topK = topK ?? defaults.topK
        options.topP = topP ?? defaults.topP
        options.seed = seed ?? defaults.seed
        options.badWords = badWords.isEmpty ? defaults.badWords : badWords
        return options
    }
}

extension DecodingOptions {
    /// The `DecodingOptions` message's fields as protoc-c compiled captioner.proto: name, number and
    /// whether the table's kind for that name matches the field's type (for the test that holds
    /// the table and the proto together).
    public static var protoFields: [(name: String, number: UInt32, matchesRow: Bool)] {
        DecodingOptionFields.protoFields.map { field in
            (field.name, field.number, DecodingOption(rawValue: field.name).map(DecodingOptionFields.kindMatches) ?? false)
        }
    }

    /// Copies the options out of protobuf-c's struct, field by field as the table names them
    /// (``DecodingOptionFields``); `NULL` (absent) means all unset.
    init(_ c: UnsafeMutablePointer<Blip__V1__DecodingOptions>?) throws(MessageDecodingError) {
        self.init()
        guard let c else { return }
        for option in DecodingOption.allCases {
            self[option] = try DecodingOptionFields.read(option, from: UnsafeRawPointer(c))
        }
    }

    /// The options as protobuf-c's struct, or `NULL` when nothing is set (so an all-default
    /// request does not even carry the field).
    func cMessage(in arena: CArena) -> UnsafeMutablePointer<Blip__V1__DecodingOptions>? {
        guard self != DecodingOptions() else { return nil }
        var c = Blip__V1__DecodingOptions()
        blip__v1__decoding_options__init(&c)
        withUnsafeMutableBytes(of: &c) { raw in
            for option in DecodingOption.allCases {
                if let value = self[option] { DecodingOptionFields.write(value, of: option, to: raw.baseAddress!, in: arena) }
            }
        }
        return arena.store(c)
    }
}
