import Foundation

/// Why a WordPiece vocabulary could not be loaded.
public enum TokenizerError: Error, Sendable, CustomStringConvertible {
    /// The vocabulary file could not be read.
    case unreadableVocabulary(path: String, reason: String)
    /// A line of the vocabulary file is not valid UTF-8.
    case invalidUTF8(path: String, line: Int)
    /// The vocabulary has no tokens.
    case emptyVocabulary(path: String)
    /// A token BERT needs (`[PAD]`, `[UNK]`, `[CLS]`, `[SEP]`, `[MASK]`) is not in the vocabulary.
    case missingSpecialToken(token: String, path: String)
    /// The vocabulary has more tokens than an `Int32` id can number.
    case tooManyTokens(path: String, count: Int)

    public var description: String {
        switch self {
        case let .unreadableVocabulary(path, reason):
            return "cannot read vocabulary file \(path): \(reason); pass the vocab.txt of bert-base-uncased "
                + "(one token per line) that ships with Salesforce/blip-image-captioning-large"
        case let .invalidUTF8(path, line):
            return "vocabulary \(path): line \(line) is not valid UTF-8; the file is damaged or is not a "
                + "WordPiece vocab.txt, replace it with the checkpoint's vocab.txt"
        case let .emptyVocabulary(path):
            return "vocabulary \(path) has no tokens; replace it with the checkpoint's vocab.txt"
        case let .missingSpecialToken(token, path):
            return "vocabulary \(path) has no \(token) token; it is not a BERT vocabulary, use the "
                + "bert-base-uncased vocab.txt that ships with the checkpoint"
        case let .tooManyTokens(path, count):
            return "vocabulary \(path) has \(count) tokens, more than an Int32 id can hold; "
                + "it is not a WordPiece vocab.txt"
        }
    }
}
