import Testing
@testable import BLIPEngine

/// A caption's text handed out as it grows: the pieces concatenate to the decoded whole, and no
/// piece is ever taken back, whatever the clean-up rewrites across tokens.
@Suite struct CaptionTextStreamTests {
    let tokenizer: WordPieceTokenizer

    init() throws {
        tokenizer = try TokenizerCases.sharedTokenizer.get()
    }

    /// Feeds `tokens` one by one; returns the pieces and checks after every token that what was
    /// handed out is a prefix of the decode so far.
    func stream(_ tokens: [Int32]) -> [String] {
        var stream = CaptionTextStream(tokenizer: tokenizer)
        var pieces: [String] = []
        for (count, token) in tokens.enumerated() {
            if let piece = stream.append(token) { pieces.append(piece) }
            let sofar = tokenizer.decode(Array(tokens[...count]))
            #expect(sofar.hasPrefix(pieces.joined()), "after \(count + 1) tokens \(pieces.joined().debugDescription) is not a prefix of \(sofar.debugDescription)")
        }
        pieces.append(stream.finish(tokenizer.decode(tokens)))
        return pieces
    }

    func ids(_ words: [String]) -> [Int32] {
        [tokenizer.specialIDs.dec] + words.map { tokenizer.id(of: $0)! }
    }

    /// The rewrites that reach back past a space (`do n ' t` → `don't`, `dog ' s` → `dog's`), `##`
    /// pieces and punctuation.
    @Test func rewritesAcrossTokensAreNeverTakenBack() {
        let words = ["a", "dog", "do", "n", "'", "t", "run", "'", "s", "toy", "play", "##ing", ".", "it", "'", "m", "here", "[SEP]"]
        let pieces = stream(ids(words))
        #expect(pieces.joined() == tokenizer.decode(ids(words)))
        #expect(pieces.joined() == "a dog don't run's toy playing. it'm here")
        #expect(pieces.count > 3, "the text came in \(pieces.count) pieces")
    }

    /// Random sequences over the tokens the clean-up cares about (apostrophes, `n`, `t`, `s`, `m`,
    /// punctuation, `##` pieces, `do`/`not`) and ordinary words.
    @Test func randomSequencesConcatenateToTheirDecode() {
        let pool = ["'", "'", "n", "t", "s", "m", "ve", "re", "d", ".", ",", "?", "!", "do", "not", "##s", "##'", "##ing",
                    "a", "dog", "cat", "on", "the", "[SEP]", "[UNK]"]
        let poolIDs = pool.map { tokenizer.id(of: $0)! }
        var random = SystemRandomNumberGenerator()
        var longest = 0
        for _ in 0..<3000 {
            let tokens = [tokenizer.specialIDs.dec] + (0..<Int.random(in: 1...16, using: &random)).map { _ in poolIDs.randomElement(using: &random)! }
            let pieces = stream(tokens)
            #expect(pieces.joined() == tokenizer.decode(tokens), "tokens \(tokens)")
            longest = max(longest, pieces.count)
        }
        #expect(longest > 4)
    }
}
