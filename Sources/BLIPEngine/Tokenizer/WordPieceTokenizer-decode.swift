extension WordPieceTokenizer {
    /// The text of `ids`, as transformers 5.24's `tokenizer.decode` gives it.
    ///
    /// Tokens are joined with spaces, except that a `##` piece joins the token before it (even a prompt
    /// word); the first token keeps its `##`. Each token also gets the `tokenizers` WordPiece decoder's
    /// own clean-up (`" ."` → `"."` and the like) whatever `cleanUpTokenizationSpaces` says. Ids
    /// outside the vocabulary are dropped, as `tokenizers` drops them.
    /// - Parameters:
    ///   - ids: Token ids, e.g. a generated caption starting with `[DEC]`.
    ///   - skipSpecialTokens: Drop `[PAD]`, `[UNK]`, `[CLS]`, `[SEP]`, `[MASK]`, `[DEC]` and `[ENC]`.
    ///   - cleanUpTokenizationSpaces: Apply transformers' `clean_up_tokenization` to the joined text
    ///     (`"it ' s"` → `"it's"`). transformers 5 defaults to false; BLIP's hub configuration was
    ///     written with transformers 4, which applied it, so this defaults to true.
    public func decode(_ ids: [Int32], skipSpecialTokens: Bool = true,
                       cleanUpTokenizationSpaces: Bool = true) -> String {
        var text: [UInt8] = []
        text.reserveCapacity(ids.count * 8)
        var piece: [UInt8] = []
        var kept = 0
        for id in ids {
            guard id >= 0, Int(id) < table.count else { continue }
            if skipSpecialTokens && isSpecial[Int(id)] { continue }
            piece.removeAll(keepingCapacity: true)
            table.withBytes(of: Int(id)) { token in
                if kept == 0 {
                    piece.append(contentsOf: token)
                } else if token.count >= 2 && token[0] == UInt8(ascii: "#") && token[1] == UInt8(ascii: "#") {
                    piece.append(contentsOf: token[2...])
                } else {
                    piece.append(UInt8(ascii: " "))
                    piece.append(contentsOf: token)
                }
            }
            kept += 1
            text.append(contentsOf: Self.replacingAll(Self.decoderCleanup, in: piece))
        }
        if cleanUpTokenizationSpaces {
            text = Self.replacingAll(Self.tokenizationCleanup, in: text)
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// The `tokenizers` WordPiece decoder's per-token clean-up (`cleanup=True`), in its order.
    private static let decoderCleanup: [(pattern: [UInt8], replacement: [UInt8])] = [
        (" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
        (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"),
    ].map { (Array($0.0.utf8), Array($0.1.utf8)) }

    /// transformers' `clean_up_tokenization` on the joined text, in its order.
    private static let tokenizationCleanup: [(pattern: [UInt8], replacement: [UInt8])] = [
        (" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
        (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"),
    ].map { (Array($0.0.utf8), Array($0.1.utf8)) }

    /// Applies each replacement in turn, each one left to right without overlaps, as a chain of
    /// Python `str.replace` calls does. Every pattern starts with an ASCII space, so matching bytes is
    /// matching characters.
    private static func replacingAll(_ replacements: [(pattern: [UInt8], replacement: [UInt8])],
                                     in text: [UInt8]) -> [UInt8] {
        guard text.contains(UInt8(ascii: " ")) else { return text }
        var text = text
        for (pattern, replacement) in replacements {
            var output: [UInt8] = []
            var index = 0
            var replaced = false
            while index < text.count {
                if text[index] == pattern[0] && index + pattern.count <= text.count
                    && text[index ..< index + pattern.count].elementsEqual(pattern) {
                    if !replaced {
                        output.reserveCapacity(text.count)
                        output.append(contentsOf: text[..<index])
                        replaced = true
                    }
                    output.append(contentsOf: replacement)
                    index += pattern.count
                } else {
                    if replaced { output.append(text[index]) }
                    index += 1
                }
            }
            if replaced { text = output }
        }
        return text
    }
}
