/// The decoding options of a caption request, one row each: the one place their wire field,
/// command-line flag, OpenAI field, type, range, default and help live.
///
/// Everything else reads the rows: the wire encoding (`DecodingOptions`, by field name through
/// protobuf-c's descriptor), `blip-caption`'s flags, help and checks, the engine's parameters and
/// their validation (`GenerationParameters`), Info's defaults, `info --json` and the OpenAI face.
/// The raw value is the field's name in proto/blip/v1/captioner.proto, which is also the name
/// transformers' `generate()` gives the parameter.
public enum DecodingOption: String, CaseIterable, Sendable, Hashable {
    case numBeams = "num_beams"
    case maxNewTokens = "max_new_tokens"
    case minNewTokens = "min_new_tokens"
    case maxLength = "max_length"
    case minLength = "min_length"
    case lengthPenalty = "length_penalty"
    case repetitionPenalty = "repetition_penalty"
    case noRepeatNgramSize = "no_repeat_ngram_size"
    case numReturnSequences = "num_return_sequences"
    case earlyStopping = "early_stopping"
    case doSample = "do_sample"
    case temperature
    case topK = "top_k"
    case topP = "top_p"
    case seed
    case badWords = "bad_words"

    /// One option's facts.
    public struct Row: Sendable {
        /// The field number in `DecodingOptions` of captioner.proto.
        public let field: UInt32
        public let kind: OptionKind
        /// What an unset option means; `nil`: nothing (the option has no default value).
        public let defaultValue: OptionValue?
        public let allowed: OptionRange
        /// The OpenAI chat-completions field that sets it, or `nil` when OpenAI has none.
        public let openAI: OpenAIField?
        public let help: String
    }

    /// The table.
    public var row: Row {
        switch self {
        case .numBeams:
            Row(field: 1, kind: .count, defaultValue: .count(3), allowed: .integers(1, .limit(.maxBeams)), openAI: nil,
                help: "Beams for beam search; 1 = greedy decoding, or plain sampling with do_sample (the default then).")
        case .maxNewTokens:
            Row(field: 2, kind: .count, defaultValue: nil, allowed: .integers(1, .limit(.maxTokens, minus: 1)),
                openAI: OpenAIField(names: ["max_completion_tokens", "max_tokens"], kind: .integer(minimum: 1)),
                help: "Most tokens to generate, the final [SEP] included; wins over max_length.")
        case .minNewTokens:
            Row(field: 3, kind: .count, defaultValue: nil, allowed: .integers(0, .limit(.maxTokens, minus: 1)), openAI: nil,
                help: "Fewest tokens to generate before [SEP] may end the caption; wins over min_length.")
        case .maxLength:
            Row(field: 4, kind: .count, defaultValue: .count(20),
                allowed: .integers(2, .limit(.maxTokens), note: "the whole sequence, [DEC] and prompt included"), openAI: nil,
                help: "Most tokens in the whole sequence, [DEC] and prompt included (applies when max_new_tokens is unset).")
        case .minLength:
            Row(field: 5, kind: .count, defaultValue: .count(5), allowed: .integers(0, .limit(.maxTokens)), openAI: nil,
                help: "Fewest tokens in the whole sequence, [DEC] and prompt included (applies when min_new_tokens is unset).")
        case .lengthPenalty:
            Row(field: 6, kind: .real, defaultValue: .real(1), allowed: .finite, openAI: nil,
                help: "Beam score = log-probability sum / generated_tokens^length_penalty; > 0 favours long captions.")
        case .repetitionPenalty:
            Row(field: 7, kind: .real, defaultValue: .real(1), allowed: .positive(note: "1 disables it"), openAI: nil,
                help: "Penalty > 1 discourages tokens already in the sequence (CTRL's); 1 = off.")
        case .noRepeatNgramSize:
            Row(field: 8, kind: .count, defaultValue: .count(0), allowed: .integers(0, .limit(.maxTokens), note: "0 disables it"),
                openAI: nil, help: "Never repeat an n-gram of this size; 0 = off.")
        case .numReturnSequences:
            Row(field: 9, kind: .count, defaultValue: .count(1), allowed: .integers(1, .limit(.maxBeams)),
                openAI: OpenAIField(names: ["n"], kind: .integer(minimum: 1)),
                help: "Captions to return, best first: at most num_beams with beam search, independent samples with do_sample.")
        case .earlyStopping:
            Row(field: 10, kind: .flag, defaultValue: .flag(false), allowed: .any, openAI: nil,
                help: "Stop beam search as soon as num_beams captions are finished.")
        case .doSample:
            Row(field: 11, kind: .flag, defaultValue: .flag(false), allowed: .any, openAI: nil,
                help: "Sample instead of searching (with temperature, top_k, top_p, seed).")
        case .temperature:
            Row(field: 12, kind: .real, defaultValue: .real(1), allowed: .positive(note: nil),
                openAI: OpenAIField(names: ["temperature"], kind: .number(minimum: 0, maximum: 2)),
                help: "Sampling temperature > 0: logits are divided by it.")
        case .topK:
            Row(field: 13, kind: .count, defaultValue: .count(50), allowed: .integers(0, .unbounded, note: "0 disables top-k"),
                openAI: nil, help: "Sample among the k most likely tokens; 0 = all.")
        case .topP:
            Row(field: 14, kind: .real, defaultValue: .real(1), allowed: .unitInterval(note: "1 disables top-p"),
                openAI: OpenAIField(names: ["top_p"], kind: .number(minimum: 0, maximum: 1)),
                help: "Sample from the smallest set of tokens whose probability reaches p, in (0, 1]; 1 = off.")
        case .seed:
            Row(field: 15, kind: .seed, defaultValue: nil, allowed: .any,
                openAI: OpenAIField(names: ["seed"], kind: .seed),
                help: "Seed of the sampler: the same seed, options and model give the same captions (default: one per call).")
        case .badWords:
            Row(field: 16, kind: .words, defaultValue: .words([]), allowed: .words, openAI: nil,
                help: "Words or phrases never to generate (each tokenized without special tokens), e.g. arafed.")
        }
    }

    /// The command-line flag: the field name in kebab case (`--num-beams`).
    public var flag: String { "--" + rawValue.replacingUnderscores(with: "-") }

    /// The default of `num_beams` when it is unset: 3 to search, 1 to sample (3 would silently turn
    /// sampling into beam sampling).
    public static func defaultNumBeams(doSample: Bool) -> Int {
        guard !doSample, case .count(let beams) = numBeams.row.defaultValue else { return 1 }
        return beams
    }

    /// The option a name means: a field name (`top_p`) or a flag (`--top-p`).
    public init?(named name: String) {
        let field = name.hasPrefix("--") ? String(name.dropFirst(2)).replacingUnderscores(with: "_", from: "-") : name
        self.init(rawValue: field)
    }
}

extension String {
    func replacingUnderscores(with replacement: Character, from original: Character = "_") -> String {
        String(map { $0 == original ? replacement : $0 })
    }
}
