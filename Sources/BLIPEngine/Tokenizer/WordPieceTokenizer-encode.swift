import Foundation

extension WordPieceTokenizer {
    /// The ids of `text` without `[CLS]`/`[SEP]` (transformers' `add_special_tokens=False`).
    ///
    /// Never fails: characters the vocabulary cannot spell end up as `[UNK]`.
    public func encode(_ text: String) -> [Int32] {
        var ids: [Int32] = []
        var scratch = EncodeScratch()
        var text = text
        text.withUTF8 { bytes in
            // The special tokens' literal text is matched on the raw input, before any normalization,
            // case-sensitively ("[dec]" is three words), anywhere ("x[DEC]y" is x, [DEC], y).
            var segmentStart = 0
            var index = 0
            while index < bytes.count {
                if bytes[index] == UInt8(ascii: "["), let special = specialLiteral(in: bytes, at: index) {
                    encodeSegment(UnsafeBufferPointer(rebasing: bytes[segmentStart ..< index]),
                                  into: &ids, scratch: &scratch)
                    ids.append(special.id)
                    index += special.length
                    segmentStart = index
                } else {
                    index += 1
                }
            }
            encodeSegment(UnsafeBufferPointer(rebasing: bytes[segmentStart...]), into: &ids, scratch: &scratch)
        }
        return ids
    }

    /// The special token whose spelling starts at `bytes[index]`, longest first.
    private func specialLiteral(in bytes: UnsafeBufferPointer<UInt8>, at index: Int) -> (id: Int32, length: Int)? {
        for literal in specialLiterals where index + literal.bytes.count <= bytes.count {
            var matches = true
            for k in 0 ..< literal.bytes.count where bytes[index + k] != literal.bytes[k] {
                matches = false
                break
            }
            if matches { return (literal.id, literal.bytes.count) }
        }
        return nil
    }

    /// Normalizes, pre-tokenizes and WordPiece-splits text that holds no special token.
    private func encodeSegment(_ bytes: UnsafeBufferPointer<UInt8>, into ids: inout [Int32],
                               scratch: inout EncodeScratch) {
        if bytes.isEmpty { return }
        // Clean-up and CJK spacing come first, as in `tokenizers`' BertNormalizer, because canonical
        // decomposition must see the text after control characters are gone.
        scratch.scalars.removeAll(keepingCapacity: true)
        var needsDecomposition = false
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        decoding: while true {
            switch decoder.decode(&iterator) {
            case let .scalarValue(scalar):
                if BertCharacterClass.isRemoved(scalar) { continue }
                if BertCharacterClass.isWhitespace(scalar) {
                    scratch.scalars.append(" ")
                } else if BertCharacterClass.isChineseCharacter(scalar) {
                    scratch.scalars.append(" ")
                    scratch.scalars.append(scalar)
                    scratch.scalars.append(" ")
                    needsDecomposition = true
                } else {
                    scratch.scalars.append(scalar)
                    if scalar.value >= 0x80 { needsDecomposition = true }
                }
            case .error:
                continue  // unreachable for a Swift String, whose storage is valid UTF-8
            case .emptyInput:
                break decoding
            }
        }
        if needsDecomposition {
            // Accent stripping: canonical decomposition (NFD) of the whole segment, then drop Mn.
            let decomposed = String(String.UnicodeScalarView(scratch.scalars)).decomposedStringWithCanonicalMapping
            splitWords(decomposed.unicodeScalars, into: &ids, scratch: &scratch)
        } else {
            splitWords(scratch.scalars, into: &ids, scratch: &scratch)
        }
    }

    /// Drops non-spacing marks, lower-cases, splits into words on whitespace and punctuation
    /// (each punctuation character is a word), and WordPiece-splits each word.
    private func splitWords<S: Sequence<Unicode.Scalar>>(_ scalars: S, into ids: inout [Int32],
                                                         scratch: inout EncodeScratch) {
        scratch.resetWord()
        for scalar in scalars {
            let value = scalar.value
            if value < 0x80 {
                if value >= 0x41 && value <= 0x5A {
                    scratch.appendToWord(Unicode.Scalar(UInt8(value + 0x20)))
                } else {
                    classifyLowercased(scalar, into: &ids, scratch: &scratch)
                }
                continue
            }
            if BertCharacterClass.isNonspacingMark(scalar) { continue }
            if scalar.properties.changesWhenLowercased {
                for lowered in scalar.properties.lowercaseMapping.unicodeScalars {
                    classifyLowercased(lowered, into: &ids, scratch: &scratch)
                }
            } else {
                classifyLowercased(scalar, into: &ids, scratch: &scratch)
            }
        }
        flushWord(into: &ids, scratch: &scratch)
    }

    @inline(__always)
    private func classifyLowercased(_ scalar: Unicode.Scalar, into ids: inout [Int32],
                                    scratch: inout EncodeScratch) {
        if BertCharacterClass.isWhitespace(scalar) {
            flushWord(into: &ids, scratch: &scratch)
        } else if BertCharacterClass.isPunctuation(scalar) {
            flushWord(into: &ids, scratch: &scratch)
            scratch.appendToWord(scalar)
            flushWord(into: &ids, scratch: &scratch)
        } else {
            scratch.appendToWord(scalar)
        }
    }

    /// WordPiece: greedy longest-match-first from the left, continuation pieces looked up with `##`.
    private func flushWord(into ids: inout [Int32], scratch: inout EncodeScratch) {
        defer { scratch.resetWord() }
        let characters = scratch.wordCharacterCount
        if characters == 0 { return }
        if characters > Self.maxCharactersPerWord {
            ids.append(specialIDs.unk)
            return
        }
        let firstPiece = ids.count
        let found: Bool = scratch.word.withUnsafeBufferPointer { word in
            let count = word.count
            var start = 0
            while start < count {
                var end = min(count, start + table.longestTokenByteCount)
                while end < count && Self.isContinuationByte(word[end]) { end -= 1 }
                var piece: Int32?
                while end > start {
                    if let id = table.id(continuation: start > 0,
                                         UnsafeBufferPointer(rebasing: word[start ..< end])) {
                        piece = id
                        break
                    }
                    end -= 1
                    while end > start && Self.isContinuationByte(word[end]) { end -= 1 }
                }
                guard let piece else { return false }
                ids.append(piece)
                start = end
            }
            return true
        }
        if !found {
            ids.removeSubrange(firstPiece...)
            ids.append(specialIDs.unk)
        }
    }

    @inline(__always)
    private static func isContinuationByte(_ byte: UInt8) -> Bool { byte & 0xC0 == 0x80 }
}

/// Buffers `encode` reuses across the segments and words of one call.
struct EncodeScratch {
    /// The cleaned scalars of the current segment.
    var scalars: [Unicode.Scalar] = []
    /// The UTF-8 bytes of the word being collected.
    var word: [UInt8] = []
    var wordCharacterCount = 0

    init() {
        scalars.reserveCapacity(256)
        word.reserveCapacity(64)
    }

    @inline(__always)
    mutating func appendToWord(_ scalar: Unicode.Scalar) {
        if scalar.value < 0x80 {
            word.append(UInt8(scalar.value))
        } else {
            UTF8.encode(scalar) { word.append($0) }
        }
        wordCharacterCount += 1
    }

    @inline(__always)
    mutating func resetWord() {
        word.removeAll(keepingCapacity: true)
        wordCharacterCount = 0
    }
}
