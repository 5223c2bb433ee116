import Foundation
import Testing
@testable import BLIPEngine

/// Reference cases written by `scripts/reference/make_tokenizer_cases.py` from transformers 5.24.
struct TokenizerCases: Decodable, Sendable {
    struct Special: Decodable, Sendable {
        let pad, unk, cls, sep, mask, dec, enc: Int32
    }

    struct Encode: Decodable, Sendable, CustomTestStringConvertible {
        let name: String
        let text: String
        let ids: [Int32]
        let idsWithSpecialTokens: [Int32]
        var testDescription: String { name }
    }

    struct Decode: Decodable, Sendable, CustomTestStringConvertible {
        let ids: [Int32]
        let skipSpecialTokens: Bool
        let cleanUpTokenizationSpaces: Bool
        let text: String
        var testDescription: String {
            "\(ids) skip=\(skipSpecialTokens) clean=\(cleanUpTokenizationSpaces)"
        }
    }

    let transformers: String
    let vocabularySize: Int
    let specialIDs: Special
    let encode: [Encode]
    let decode: [Decode]

    static let fixtures = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")
    static let vocabularyFile = fixtures.appendingPathComponent("vocab.txt")

    static func load() throws -> TokenizerCases {
        let data = try Data(contentsOf: fixtures.appendingPathComponent("tokenizer/cases.json"))
        return try JSONDecoder().decode(TokenizerCases.self, from: data)
    }

    /// One tokenizer for all tests: loading the 30522-line vocabulary once keeps the suite fast.
    static let sharedTokenizer = Result { () throws(TokenizerError) in
        try WordPieceTokenizer(vocabularyFile: vocabularyFile)
    }
}

@Suite struct TokenizerTests {
    let tokenizer: WordPieceTokenizer

    init() throws {
        tokenizer = try TokenizerCases.sharedTokenizer.get()
    }

    @Test func vocabularyAndSpecialIDsMatchTransformers() throws {
        let cases = try TokenizerCases.load()
        #expect(tokenizer.vocabularySize == cases.vocabularySize)
        let s = cases.specialIDs
        #expect(tokenizer.specialIDs == SpecialTokenIDs(pad: s.pad, unk: s.unk, cls: s.cls, sep: s.sep,
                                                         mask: s.mask, dec: s.dec, enc: s.enc))
        #expect(tokenizer.id(of: "[DEC]") == 30522)
        #expect(tokenizer.id(of: "##s") == 2015)
        #expect(tokenizer.id(of: "not-a-token") == nil)
        #expect(tokenizer.token(of: 30523) == "[ENC]")
        #expect(tokenizer.token(of: 30524) == nil)
    }

    @Test(arguments: try TokenizerCases.load().encode)
    func encodeMatchesTransformers(_ reference: TokenizerCases.Encode) {
        let ids = tokenizer.encode(reference.text)
        #expect(ids == reference.ids,
                "text \(reference.text.debugDescription): expected \(reference.ids), got \(ids)")
        let withSpecial = tokenizer.encodeWithSpecialTokens(reference.text)
        #expect(withSpecial == reference.idsWithSpecialTokens,
                "text \(reference.text.debugDescription): expected \(reference.idsWithSpecialTokens), got \(withSpecial)")
    }

    @Test(arguments: try TokenizerCases.load().decode)
    func decodeMatchesTransformers(_ reference: TokenizerCases.Decode) {
        let text = tokenizer.decode(reference.ids, skipSpecialTokens: reference.skipSpecialTokens,
                                    cleanUpTokenizationSpaces: reference.cleanUpTokenizationSpaces)
        #expect(text == reference.text,
                "ids \(reference.ids): expected \(reference.text.debugDescription), got \(text.debugDescription)")
    }

    @Test func promptGivesTheIDsGenerateStartsFrom() {
        #expect(tokenizer.encodeWithSpecialTokens("a picture of") == [101, 1037, 3861, 1997, 102])
        #expect(tokenizer.decode([30522, 1037, 3861, 1997, 2015, 102]) == "a picture ofs")
    }

    /// Lower-case ASCII words separated by single spaces survive encode → decode unchanged:
    /// every letter is in the vocabulary both as a word start and as a `##` piece.
    @Test func plainLowercaseSentencesRoundTrip() {
        var random = SplitMix64(seed: 0x5EED)
        let letters = Array("abcdefghijklmnopqrstuvwxyz")
        for _ in 0 ..< 500 {
            let words = (0 ..< Int(random.next() % 12) + 1).map { _ in
                let length = random.next() % 10 == 0 ? Int(random.next() % 100) + 1 : Int(random.next() % 12) + 1
                return String((0 ..< length).map { _ in letters[Int(random.next() % 26)] })
            }
            let sentence = words.joined(separator: " ")
            let ids = tokenizer.encode(sentence)
            #expect(!ids.contains(tokenizer.specialIDs.unk), "\(sentence) -> \(ids)")
            let decoded = tokenizer.decode(ids)
            #expect(decoded == sentence, "\(sentence) -> \(ids) -> \(decoded)")
        }
    }

    /// Arbitrary scalars (controls, marks, CJK, emoji, private use, unassigned) never crash `encode`,
    /// and every id is a real vocabulary id.
    @Test func arbitraryScalarsGiveValidIDs() {
        var random = SplitMix64(seed: 42)
        let ranges: [ClosedRange<UInt32>] = [0 ... 0x7F, 0x80 ... 0x36F, 0x370 ... 0x2FFF, 0x3000 ... 0x9FFF,
                                              0xE000 ... 0xFFFF, 0x10000 ... 0x10FFFF]
        for _ in 0 ..< 300 {
            var scalars = String.UnicodeScalarView()
            for _ in 0 ..< Int(random.next() % 200) {
                let range = ranges[Int(random.next() % UInt64(ranges.count))]
                let value = range.lowerBound + UInt32(random.next() % UInt64(range.count))
                if let scalar = Unicode.Scalar(value) { scalars.append(scalar) }
            }
            let text = String(scalars)
            let ids = tokenizer.encode(text)
            #expect(ids.allSatisfy { $0 >= 0 && Int($0) < tokenizer.vocabularySize },
                    "\(text.debugDescription) -> \(ids)")
            _ = tokenizer.decode(ids + [-1, Int32.max, Int32.min])
        }
    }

    @Test func vocabularyFileLinesAndAppendedTokens() throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("tokenizer-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("vocab.txt")
        // \r\n and \r end lines as in Python's text mode; the last line needs no newline.
        try Data("[PAD]\r\n[UNK]\r[CLS]\n[SEP]\n[MASK]\nhello\n##s\n[ENC]".utf8).write(to: file)
        let small = try WordPieceTokenizer(vocabularyFile: file)
        #expect(small.vocabularySize == 9)
        #expect(small.specialIDs == SpecialTokenIDs(pad: 0, unk: 1, cls: 2, sep: 3, mask: 4, dec: 8, enc: 7))
        #expect(small.encode("Hellos hello x") == [5, 6, 5, 1])
        #expect(small.decode([8, 5, 6, 3]) == "hellos")
        #expect(small.decode([8, 5, 6, 3], skipSpecialTokens: false) == "[DEC] hellos [SEP]")
    }

    @Test func vocabularyErrorsNameTheFile() throws {
        let missing = URL(fileURLWithPath: "/nonexistent/vocab.txt")
        #expect {
            try WordPieceTokenizer(vocabularyFile: missing)
        } throws: { error in
            guard case .unreadableVocabulary? = error as? TokenizerError else { return false }
            return "\(error)".contains("/nonexistent/vocab.txt")
        }
        #expect {
            try WordPieceTokenizer(vocabulary: ["[PAD]", "[CLS]", "[SEP]", "[MASK]"])
        } throws: { error in
            guard case .missingSpecialToken(let token, _)? = error as? TokenizerError else { return false }
            return token == "[UNK]"
        }
        #expect(throws: TokenizerError.self) { try WordPieceTokenizer(vocabulary: []) }
    }
}

/// A small deterministic generator, so property tests fail the same way every run.
private struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
