/// Why `Generator.generate` could not run.
public enum GenerationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The parameters break an invariant of the algorithms (call `GenerationParameters.validated` first).
    case invalidParameters(ParameterError)
    /// The prefix must hold at least the `[DEC]` token.
    case emptyPrefix
    /// The prefix already reaches the maximum length, so nothing could be generated.
    case prefixTooLong(length: Int, maxLength: Int)
    /// A prefix or bad-word token is not in the decoder's vocabulary.
    case tokenOutOfRange(token: Int32, vocabularySize: Int)
    /// A bad word tokenized to nothing.
    case emptyBadWord
    /// The decoder returned a logits buffer of the wrong size.
    case logitsSizeMismatch(expected: Int, got: Int)

    public var description: String {
        switch self {
        case .invalidParameters(let error):
            return "invalid generation parameters: \(error)"
        case .emptyPrefix:
            return "the generation prefix is empty; it must start with the [DEC] token"
        case .prefixTooLong(let length, let maxLength):
            return "the prefix has \(length) tokens but the maximum length is \(maxLength); "
                + "use a shorter prompt or raise max_length / max_new_tokens"
        case .tokenOutOfRange(let token, let vocabularySize):
            return "token \(token) is outside the decoder vocabulary of \(vocabularySize) tokens"
        case .emptyBadWord:
            return "a bad word tokenized to no tokens; remove it"
        case .logitsSizeMismatch(let expected, let got):
            return "the decoder returned \(got) logits where \(expected) were expected"
        }
    }
}
