/// The ids of the tokens BLIP's tokenizer treats as special, looked up from the vocabulary.
///
/// All seven are dropped by `decode(_:skipSpecialTokens: true)` and are recognised as whole tokens
/// when their literal text (case-sensitive, e.g. `"[DEC]"`) appears in the input to `encode`.
public struct SpecialTokenIDs: Sendable, Equatable {
    /// `[PAD]`, 0 in bert-base-uncased.
    public let pad: Int32
    /// `[UNK]`, 100: words with no WordPiece split, or longer than 100 characters.
    public let unk: Int32
    /// `[CLS]`, 101: starts a sequence built with special tokens.
    public let cls: Int32
    /// `[SEP]`, 102: ends a sequence; the caption decoder stops on it.
    public let sep: Int32
    /// `[MASK]`, 103.
    public let mask: Int32
    /// `[DEC]`, 30522: BLIP's decoder start (bos) token, appended after the BERT vocabulary.
    public let dec: Int32
    /// `[ENC]`, 30523: BLIP's additional special token, appended after `[DEC]`.
    public let enc: Int32

    /// The seven ids, in the order above.
    public var all: [Int32] { [pad, unk, cls, sep, mask, dec, enc] }
}
