/// Service limits that `GenerationParameters.validated` enforces on top of what the algorithms accept.
///
/// Text is bounded in UTF-8 bytes (checked before anything is tokenized, so a request cannot buy
/// tokenizer time beyond the limit) and in tokens; never in characters, since one grapheme cluster
/// can hold thousands of code points.
public struct GenerationLimits: Sendable, Equatable {
    /// Largest `numBeams`; each beam is one decoder row, so this bounds memory and time per step.
    public var maxBeams: Int
    /// Largest `numReturnSequences` when sampling (with beam search it is bounded by `numBeams`).
    public var maxReturnSequences: Int
    /// Largest number of entries in `badWords`.
    public var maxBadWords: Int
    /// Largest prompt and bad-word length in UTF-8 bytes.
    public var maxTextBytes: Int
    /// Largest token count of one bad word (a longer sequence can hardly ever be generated, and every
    /// decoder step compares each bad word's tokens with the sequence).
    public var maxBadWordTokens: Int

    public init(maxBeams: Int = 8, maxReturnSequences: Int = 8, maxBadWords: Int = 64, maxTextBytes: Int = 512,
                maxBadWordTokens: Int = 32) {
        self.maxBeams = maxBeams
        self.maxReturnSequences = maxReturnSequences
        self.maxBadWords = maxBadWords
        self.maxTextBytes = maxTextBytes
        self.maxBadWordTokens = maxBadWordTokens
    }

    /// No service limits: only what the algorithms themselves require is checked.
    static let unlimited = GenerationLimits(
        maxBeams: Int(Int32.max), maxReturnSequences: Int(Int32.max),
        maxBadWords: Int(Int32.max), maxTextBytes: Int(Int32.max), maxBadWordTokens: Int(Int32.max))
}
