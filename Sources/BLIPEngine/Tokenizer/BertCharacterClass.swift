/// The character classes of BERT's normalizer and pre-tokenizer, as the Hugging Face `tokenizers`
/// library (which transformers 5 uses for `BertTokenizer`) defines them.
///
/// `tokenizers` takes general categories from the `unicode_categories` crate, whose tables are
/// Unicode 8.0: a character assigned later (a new punctuation mark, combining mark or format
/// character) is to it an ordinary letter. To give the same ids, the category tests here treat any
/// scalar newer than Unicode 8.0 the same way. Whitespace and lower-casing come from Rust's standard
/// library, which follows current Unicode, as Swift does.
enum BertCharacterClass {
    /// The Unicode version of the category tables `tokenizers` uses.
    private static let categoryVersion: Unicode.Version = (major: 8, minor: 0)

    private static func category(_ scalar: Unicode.Scalar) -> Unicode.GeneralCategory? {
        guard let age = scalar.properties.age,
              age.major < categoryVersion.major
              || (age.major == categoryVersion.major && age.minor <= categoryVersion.minor)
        else { return nil }
        return scalar.properties.generalCategory
    }

    /// Removed by the normalizer's clean-up step: NUL, U+FFFD and control/format/private-use
    /// characters (Cc, Cf, Co, Cs), except tab, newline and carriage return, which are whitespace.
    /// Unassigned code points (Cn) are kept.
    static func isRemoved(_ scalar: Unicode.Scalar) -> Bool {
        let value = scalar.value
        if value < 0x80 {
            // ASCII: the C0 controls and DEL, minus \t \n \r (NUL is among them).
            return (value < 0x20 && value != 0x09 && value != 0x0A && value != 0x0D) || value == 0x7F
        }
        if value == 0xFFFD { return true }
        switch category(scalar) {
        case .control?, .format?, .privateUse?, .surrogate?: return true
        default: return false
        }
    }

    /// Whitespace (`char::is_whitespace` in Rust: the Unicode White_Space property, which includes
    /// tab, newline and carriage return).
    @inline(__always)
    static func isWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        let value = scalar.value
        if value < 0x80 { return value == 0x20 || (value >= 0x09 && value <= 0x0D) }
        return scalar.properties.isWhitespace
    }

    /// CJK ideographs, which the normalizer surrounds with spaces so each becomes its own word.
    /// The ranges are BERT's (the CJK Unified Ideographs blocks, extensions A–E and the compatibility
    /// ideographs; not kana or hangul), except that `tokenizers` starts extension E at U+2B920 where
    /// BERT has U+2B820; U+2B820–U+2B91F are ordinary letters to it, and so here.
    @inline(__always)
    static func isChineseCharacter(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x4E00 ... 0x9FFF, 0x3400 ... 0x4DBF, 0x20000 ... 0x2A6DF, 0x2A700 ... 0x2B73F,
             0x2B740 ... 0x2B81F, 0x2B920 ... 0x2CEAF, 0xF900 ... 0xFAFF, 0x2F800 ... 0x2FA1F:
            return true
        default:
            return false
        }
    }

    /// Punctuation, which the pre-tokenizer isolates into single-character words: ASCII 33–47,
    /// 58–64, 91–96 and 123–126 (so `$`, `+`, `^` count), or any Unicode P* category.
    @inline(__always)
    static func isPunctuation(_ scalar: Unicode.Scalar) -> Bool {
        let value = scalar.value
        if value < 0x80 {
            return (value >= 33 && value <= 47) || (value >= 58 && value <= 64)
                || (value >= 91 && value <= 96) || (value >= 123 && value <= 126)
        }
        switch category(scalar) {
        case .connectorPunctuation?, .dashPunctuation?, .openPunctuation?, .closePunctuation?,
             .initialPunctuation?, .finalPunctuation?, .otherPunctuation?:
            return true
        default:
            return false
        }
    }

    /// Non-spacing marks (Mn), which accent stripping drops after canonical decomposition.
    @inline(__always)
    static func isNonspacingMark(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value >= 0x300 && category(scalar) == .nonspacingMark
    }
}
