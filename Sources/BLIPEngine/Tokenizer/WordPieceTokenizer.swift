import Foundation

/// BERT's uncased WordPiece tokenizer as BLIP uses it: the tokenizer transformers 5.24 loads for
/// `Salesforce/blip-image-captioning-large` (`BertTokenizer` over bert-base-uncased, bos token `[DEC]`,
/// additional special token `[ENC]`).
///
/// Encoding first cuts out the literal text of the seven special tokens (`"[DEC]"` gives 30522), then
/// normalizes the rest (drop control characters, whitespace to spaces, spaces around CJK ideographs,
/// canonical decomposition with non-spacing marks dropped, lower-casing), splits it into words on
/// whitespace and punctuation, and splits each word greedily into the longest vocabulary pieces,
/// continuation pieces spelled with a `##` prefix. A word longer than 100 characters, or one with no
/// such split, becomes `[UNK]`.
public struct WordPieceTokenizer: Sendable {
    /// Words longer than this many Unicode scalars become `[UNK]` (BERT's `max_input_chars_per_word`).
    public static let maxCharactersPerWord = 100

    /// The ids of the special tokens, looked up from the vocabulary.
    public let specialIDs: SpecialTokenIDs

    let table: VocabularyTable
    /// The literal spellings of the special tokens, longest first, with their ids.
    let specialLiterals: [(bytes: [UInt8], id: Int32)]
    /// `isSpecial[id]` is true for the seven special ids.
    let isSpecial: [Bool]

    /// Number of token ids, including `[DEC]` and `[ENC]` when they were appended (30524 for BLIP).
    public var vocabularySize: Int { table.count }

    /// Loads a vocabulary file: one token per line, the id of a token is its line number from 0.
    ///
    /// Lines end with `\n`, `\r\n` or `\r`, as Python's text mode reads them. `[DEC]` and `[ENC]` are
    /// appended (ids 30522 and 30523 for bert-base-uncased) when the file does not have them.
    /// - Parameter vocabularyFile: The `vocab.txt` of bert-base-uncased.
    /// - Throws: `TokenizerError` when the file cannot be read, is not UTF-8, is empty, or lacks one of
    ///   `[PAD]`, `[UNK]`, `[CLS]`, `[SEP]`, `[MASK]`.
    public init(vocabularyFile: URL) throws(TokenizerError) {
        let path = vocabularyFile.path
        let data: Data
        do {
            data = try Data(contentsOf: vocabularyFile)
        } catch {
            throw .unreadableVocabulary(path: path, reason: error.localizedDescription)
        }
        var tokens: [[UInt8]] = []
        var lineStart = 0
        var index = 0
        let bytes = [UInt8](data)
        func finishLine(at end: Int) throws(TokenizerError) {
            let line = Array(bytes[lineStart ..< end])
            guard String(validating: line, as: UTF8.self) != nil else {
                throw .invalidUTF8(path: path, line: tokens.count + 1)
            }
            tokens.append(line)
        }
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "\n"):
                try finishLine(at: index)
                index += 1
                lineStart = index
            case UInt8(ascii: "\r"):
                try finishLine(at: index)
                index += (index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "\n")) ? 2 : 1
                lineStart = index
            default:
                index += 1
            }
        }
        if lineStart < bytes.count { try finishLine(at: bytes.count) }
        try self.init(tokens: tokens, source: path)
    }

    /// Builds a tokenizer from a vocabulary given in id order.
    ///
    /// `[DEC]` and `[ENC]` are appended when missing, as for `init(vocabularyFile:)`.
    /// - Parameter vocabulary: The tokens; the id of a token is its index.
    /// - Throws: `TokenizerError` when the vocabulary is empty or lacks a BERT special token.
    public init(vocabulary: [String]) throws(TokenizerError) {
        try self.init(tokens: vocabulary.map { Array($0.utf8) }, source: "<in-memory vocabulary>")
    }

    private init(tokens: [[UInt8]], source: String) throws(TokenizerError) {
        guard !tokens.isEmpty else { throw .emptyVocabulary(path: source) }
        var tokens = tokens
        var table = VocabularyTable(tokens: tokens)
        // transformers adds the bos and additional special tokens after the file's tokens.
        for extra in ["[DEC]", "[ENC]"] where table.id(of: extra) == nil {
            tokens.append(Array(extra.utf8))
            table = VocabularyTable(tokens: tokens)
        }
        guard tokens.count <= Int(Int32.max) else { throw .tooManyTokens(path: source, count: tokens.count) }

        func lookUp(_ token: String) throws(TokenizerError) -> Int32 {
            guard let id = table.id(of: token) else { throw .missingSpecialToken(token: token, path: source) }
            return id
        }
        let ids = SpecialTokenIDs(
            pad: try lookUp("[PAD]"), unk: try lookUp("[UNK]"), cls: try lookUp("[CLS]"),
            sep: try lookUp("[SEP]"), mask: try lookUp("[MASK]"), dec: try lookUp("[DEC]"),
            enc: try lookUp("[ENC]"))
        var isSpecial = [Bool](repeating: false, count: tokens.count)
        for id in ids.all { isSpecial[Int(id)] = true }

        self.table = table
        self.specialIDs = ids
        self.isSpecial = isSpecial
        self.specialLiterals = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]", "[ENC]"]
            .map { (bytes: Array($0.utf8), id: table.id(of: $0)!) }
            .sorted { $0.bytes.count > $1.bytes.count }
    }

    /// The id of `token` spelled exactly as in the vocabulary (`"##s"`, `"[DEC]"`), or nil.
    public func id(of token: String) -> Int32? {
        table.id(of: token)
    }

    /// The vocabulary spelling of `id`, or nil when `id` is out of range.
    public func token(of id: Int32) -> String? {
        guard id >= 0, Int(id) < table.count else { return nil }
        return table.token(Int(id))
    }

    /// `[CLS]`, the ids of `text`, `[SEP]`: what `BlipProcessor(text:)` gives, and the form
    /// BLIP's `generate` expects for a prompt (it replaces `[CLS]` with `[DEC]` and drops the last id).
    public func encodeWithSpecialTokens(_ text: String) -> [Int32] {
        var ids: [Int32] = [specialIDs.cls]
        ids.append(contentsOf: encode(text))
        ids.append(specialIDs.sep)
        return ids
    }
}
