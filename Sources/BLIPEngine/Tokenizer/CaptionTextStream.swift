/// A caption's text as its tokens arrive, in pieces that never change afterwards: the
/// concatenation of every piece ``append(_:)`` and ``finish(_:)`` return is exactly
/// `tokenizer.decode` of the whole sequence.
///
/// Decoding is not incremental: a `##` piece joins the word before it, and the clean-up rewrites
/// across pieces (`"do n ' t"` → `"don't"`, reaching back to the space before `n`). Every rewrite
/// starts at a space and reaches at most three bytes past it, and only `" ' "` spans two pieces,
/// so the text before the last space is final unless an apostrophe sits near the end. A piece is
/// therefore the text up to the last space, held back while the last ``apostropheWindow`` bytes
/// hold an apostrophe; ``finish(_:)`` hands over the rest.
public struct CaptionTextStream: Sendable {
    let tokenizer: WordPieceTokenizer
    private var tokens: [Int32] = []
    /// The bytes handed out so far.
    private var sent: [UInt8] = []

    /// How far from the end an apostrophe holds the text back (the longest clean-up pattern is four bytes).
    static let apostropheWindow = 8

    public init(tokenizer: WordPieceTokenizer) {
        self.tokenizer = tokenizer
    }

    /// Adds the next token (the prefix's too: `[DEC]` and the prompt); returns the text that became
    /// final, or `nil` when none did.
    public mutating func append(_ token: Int32) -> String? {
        tokens.append(token)
        let text = Array(tokenizer.decode(tokens).utf8)
        guard !text.suffix(Self.apostropheWindow).contains(UInt8(ascii: "'")),
              let cut = text.lastIndex(of: UInt8(ascii: " ")), cut > sent.count,
              text.starts(with: sent) else { return nil }
        let piece = text[sent.count..<cut]
        sent = Array(text[..<cut])
        return String(decoding: piece, as: UTF8.self)
    }

    /// The rest of the caption, once it is done: `text` is the decoded whole sequence.
    public mutating func finish(_ text: String) -> String {
        let bytes = Array(text.utf8)
        guard bytes.starts(with: sent) else { return "" }  // not reached: what was sent is final
        defer { sent = bytes }
        return String(decoding: bytes[sent.count...], as: UTF8.self)
    }
}
