/// One generated sequence.
public struct Candidate: Sendable, Equatable {
    /// The full sequence: the prefix (`[DEC]` and prompt), the generated tokens, and the final `[SEP]`
    /// when one was generated (a sequence cut by the length limit has none). Never padded.
    public var tokenIDs: [Int32]

    /// Beam search: transformers' `sequences_scores`, the sum of the processed log-probabilities of the
    /// generated tokens divided by (generated tokens, final `[SEP]` included) ** `lengthPenalty`.
    /// Greedy decoding and sampling: the mean log-probability of the generated tokens under the
    /// distribution they were chosen from (after all processors and warpers), so that it reads like a
    /// beam score with length penalty 1.
    public var score: Float

    /// Why generation of this sequence ended.
    public var finishReason: FinishReason

    public init(tokenIDs: [Int32], score: Float, finishReason: FinishReason) {
        self.tokenIDs = tokenIDs
        self.score = score
        self.finishReason = finishReason
    }
}

/// Why a sequence's generation ended.
public enum FinishReason: String, Sendable, Equatable, Codable {
    /// It generated `[SEP]`.
    case eos
    /// It reached the length limit (`max_new_tokens`, `max_length`, or the model's positions)
    /// without generating `[SEP]`.
    case length
}
