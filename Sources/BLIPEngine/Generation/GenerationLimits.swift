/// Service limits that `GenerationParameters.validated` enforces on top of what the algorithms accept.
public struct GenerationLimits: Sendable, Equatable {
    /// Largest `numBeams`; each beam is one decoder row, so this bounds memory and time per step.
    public var maxBeams: Int
    /// Largest `numReturnSequences` when sampling (with beam search it is bounded by `numBeams`).
    public var maxReturnSequences: Int
    /// Largest number of entries in `badWords`.
    public var maxBadWords: Int
    /// Largest prompt and bad-word length in characters.
    public var maxTextCharacters: Int

    public init(maxBeams: Int = 8, maxReturnSequences: Int = 8, maxBadWords: Int = 64, maxTextCharacters: Int = 512) {
        self.maxBeams = maxBeams
        self.maxReturnSequences = maxReturnSequences
        self.maxBadWords = maxBadWords
        self.maxTextCharacters = maxTextCharacters
    }

    /// No service limits: only what the algorithms themselves require is checked.
    static let unlimited = GenerationLimits(
        maxBeams: Int(Int32.max), maxReturnSequences: Int(Int32.max),
        maxBadWords: Int(Int32.max), maxTextCharacters: Int(Int32.max))
}
