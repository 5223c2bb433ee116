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

    /// The defaults docs/protocol.md promises (BLIP's COCO captioning setting: beam 3, total
    /// length 5…20). ``seed`` stays unset: the server picks one per request.
    public static let documentedDefaults = DecodingOptions(
        numBeams: 3, maxLength: 20, minLength: 5, lengthPenalty: 1, repetitionPenalty: 1,
        noRepeatNgramSize: 0, numReturnSequences: 1, earlyStopping: false, doSample: false,
        temperature: 1, topK: 50, topP: 1
    )

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
    /// Copies the options out of protobuf-c's struct; `NULL` (absent) means all unset.
    init(_ c: UnsafeMutablePointer<Blip__V1__DecodingOptions>?) throws(MessageDecodingError) {
        self.init()
        guard let c = c?.pointee else { return }
        numBeams = ProtobufC.optional(c.has_num_beams, c.num_beams)
        maxNewTokens = ProtobufC.optional(c.has_max_new_tokens, c.max_new_tokens)
        minNewTokens = ProtobufC.optional(c.has_min_new_tokens, c.min_new_tokens)
        maxLength = ProtobufC.optional(c.has_max_length, c.max_length)
        minLength = ProtobufC.optional(c.has_min_length, c.min_length)
        lengthPenalty = ProtobufC.optional(c.has_length_penalty, c.length_penalty)
        repetitionPenalty = ProtobufC.optional(c.has_repetition_penalty, c.repetition_penalty)
        noRepeatNgramSize = ProtobufC.optional(c.has_no_repeat_ngram_size, c.no_repeat_ngram_size)
        numReturnSequences = ProtobufC.optional(c.has_num_return_sequences, c.num_return_sequences)
        earlyStopping = ProtobufC.optional(c.has_early_stopping, c.early_stopping != 0)
        doSample = ProtobufC.optional(c.has_do_sample, c.do_sample != 0)
        temperature = ProtobufC.optional(c.has_temperature, c.temperature)
        topK = ProtobufC.optional(c.has_top_k, c.top_k)
        topP = ProtobufC.optional(c.has_top_p, c.top_p)
        seed = ProtobufC.optional(c.has_seed, c.seed)
        for i in 0..<c.n_bad_words {
            badWords.append(try ProtobufC.string(c.bad_words[i], message: "DecodingOptions", field: "bad_words"))
        }
    }

    /// The options as protobuf-c's struct, or `NULL` when nothing is set (so an all-default
    /// request does not even carry the field).
    func cMessage(in arena: CArena) -> UnsafeMutablePointer<Blip__V1__DecodingOptions>? {
        guard self != DecodingOptions() else { return nil }
        var c = Blip__V1__DecodingOptions()
        blip__v1__decoding_options__init(&c)
        if let numBeams { c.has_num_beams = 1; c.num_beams = numBeams }
        if let maxNewTokens { c.has_max_new_tokens = 1; c.max_new_tokens = maxNewTokens }
        if let minNewTokens { c.has_min_new_tokens = 1; c.min_new_tokens = minNewTokens }
        if let maxLength { c.has_max_length = 1; c.max_length = maxLength }
        if let minLength { c.has_min_length = 1; c.min_length = minLength }
        if let lengthPenalty { c.has_length_penalty = 1; c.length_penalty = lengthPenalty }
        if let repetitionPenalty { c.has_repetition_penalty = 1; c.repetition_penalty = repetitionPenalty }
        if let noRepeatNgramSize { c.has_no_repeat_ngram_size = 1; c.no_repeat_ngram_size = noRepeatNgramSize }
        if let numReturnSequences { c.has_num_return_sequences = 1; c.num_return_sequences = numReturnSequences }
        if let earlyStopping { c.has_early_stopping = 1; c.early_stopping = earlyStopping.protobufC }
        if let doSample { c.has_do_sample = 1; c.do_sample = doSample.protobufC }
        if let temperature { c.has_temperature = 1; c.temperature = temperature }
        if let topK { c.has_top_k = 1; c.top_k = topK }
        if let topP { c.has_top_p = 1; c.top_p = topP }
        if let seed { c.has_seed = 1; c.seed = seed }
        c.n_bad_words = badWords.count
        c.bad_words = arena.array(badWords.map { Optional(arena.cString($0)) })
        return arena.store(c)
    }
}
