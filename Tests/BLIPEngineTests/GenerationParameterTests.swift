import Foundation
import Testing
import BLIPEngine

/// `GenerationParameters`: validation messages, defaults, and the Hugging Face-named coding.
@Suite struct GenerationParameterTests {
    static let limits = GenerationLimits(maxBeams: 8, maxReturnSequences: 4, maxBadWords: 2, maxTextBytes: 20)

    static func with(_ change: (inout GenerationParameters) -> Void) -> GenerationParameters {
        var parameters = GenerationParameters()
        change(&parameters)
        return parameters
    }

    /// (what is wrong, the parameters, the exact message)
    static let rejected: [(String, GenerationParameters, String)] = [
        ("no beams", with { $0.numBeams = 0 }, "num_beams must be in 1...8, got 0"),
        ("too many beams", with { $0.numBeams = 9 }, "num_beams must be in 1...8, got 9"),
        ("greedy returning 2", with { $0.numBeams = 1; $0.numReturnSequences = 2 },
         "num_return_sequences must be 1 for greedy decoding (num_beams 1 without do_sample), got 2"),
        ("more sequences than beams", with { $0.numReturnSequences = 4 },
         "num_return_sequences must be in 1...num_beams (3), got 4"),
        ("too many samples", with { $0.numBeams = 1; $0.doSample = true; $0.numReturnSequences = 5 },
         "num_return_sequences must be in 1...4 when sampling, got 5"),
        ("zero new tokens", with { $0.maxNewTokens = 0 }, "max_new_tokens must be in 1...511, got 0"),
        ("too many new tokens", with { $0.maxNewTokens = 512 }, "max_new_tokens must be in 1...511, got 512"),
        ("too long", with { $0.maxLength = 513 },
         "max_length must be in 2...512 (the whole sequence, [DEC] and prompt included), got 513"),
        ("negative minimum", with { $0.minLength = -1 }, "min_length must be in 0...512, got -1"),
        ("negative new minimum", with { $0.minNewTokens = -2 }, "min_new_tokens must be in 0...511, got -2"),
        ("infinite length penalty", with { $0.lengthPenalty = .infinity }, "length_penalty must be a finite number, got inf"),
        ("zero temperature", with { $0.temperature = 0 }, "temperature must be a finite number > 0, got 0.0"),
        ("NaN temperature", with { $0.temperature = .nan }, "temperature must be a finite number > 0, got nan"),
        ("negative top-k", with { $0.topK = -1 }, "top_k must be >= 0 (0 disables top-k), got -1"),
        ("zero top-p", with { $0.topP = 0 }, "top_p must be in (0, 1] (1 disables top-p), got 0.0"),
        ("top-p above 1", with { $0.topP = 1.5 }, "top_p must be in (0, 1] (1 disables top-p), got 1.5"),
        ("zero repetition penalty", with { $0.repetitionPenalty = 0 },
         "repetition_penalty must be a finite number > 0 (1 disables it), got 0.0"),
        ("negative n-gram size", with { $0.noRepeatNgramSize = -1 },
         "no_repeat_ngram_size must be in 0...512 (0 disables it), got -1"),
        ("too many bad words", with { $0.badWords = ["a", "b", "c"] }, "bad_words must be at most 2 words, got 3 words"),
        ("blank bad word", with { $0.badWords = [" "] }, "bad_words must be non-empty words, got \" \""),
        ("long prompt", with { $0.prompt = String(repeating: "x", count: 21) },
         "prompt must be at most 20 UTF-8 bytes, got 21 bytes"),
        // Issue 13: limits count bytes, not grapheme clusters (this is one character of 41 bytes).
        ("one-grapheme bad word of many bytes", with { $0.badWords = ["e" + String(repeating: "\u{301}", count: 20)] },
         "bad_words must be words of at most 20 UTF-8 bytes, got a word of 41 bytes"),
        ("one-grapheme prompt of many bytes", with { $0.prompt = "e" + String(repeating: "\u{301}", count: 20) },
         "prompt must be at most 20 UTF-8 bytes, got 41 bytes"),
        // Issue 13: subnormal floats divide logits into ±∞/NaN.
        ("subnormal temperature", with { $0.temperature = Float(1.4e-45) },
         "temperature must be at least 1.1754944e-38 (the smallest normal 32-bit float), got 1e-45"),
        ("subnormal top-p", with { $0.topP = Float.leastNonzeroMagnitude },
         "top_p must be at least 1.1754944e-38 (the smallest normal 32-bit float), got 1e-45"),
        ("subnormal repetition penalty", with { $0.repetitionPenalty = Float.leastNonzeroMagnitude },
         "repetition_penalty must be at least 1.1754944e-38 (the smallest normal 32-bit float), got 1e-45"),
        ("subnormal length penalty", with { $0.lengthPenalty = -Float.leastNonzeroMagnitude },
         "length_penalty must be 0 or at least 1.1754944e-38 (the smallest normal 32-bit float) in magnitude, got -1e-45"),
    ]

    @Test(arguments: rejected.indices)
    func rejectsOutOfRange(_ index: Int) {
        let (what, parameters, message) = Self.rejected[index]
        #expect(throws: ParameterError.self, "\(what)") {
            _ = try parameters.validated(maxPositions: 512, limits: Self.limits)
        }
        do {
            _ = try parameters.validated(maxPositions: 512, limits: Self.limits)
        } catch {
            #expect(error.description == message, "\(what)")
        }
    }

    @Test func acceptsDefaultsAndEdges() throws {
        let accepted = [
            GenerationParameters(),
            Self.with { $0.numBeams = 1 },
            Self.with { $0.numBeams = 1; $0.doSample = true; $0.numReturnSequences = 4; $0.topK = 0; $0.topP = 1 },
            Self.with { $0.numBeams = 8; $0.numReturnSequences = 8; $0.lengthPenalty = -2; $0.earlyStopping = true },
            Self.with { $0.maxLength = 512; $0.minLength = 600 - 88; $0.maxNewTokens = 511; $0.minNewTokens = 0 },
            Self.with { $0.badWords = ["dog", "a cat"]; $0.prompt = "a picture of" },
            Self.with { $0.temperature = Float.leastNormalMagnitude; $0.lengthPenalty = 0 },
            Self.with { $0.prompt = String(repeating: "x", count: 20) },
        ]
        for parameters in accepted {
            #expect(try parameters.validated(maxPositions: 512, limits: Self.limits) == parameters)
        }
    }

    @Test func defaultsAreThePaperSetting() {
        let parameters = GenerationParameters()
        #expect(parameters.numBeams == 3)
        #expect(parameters.maxLength == nil && parameters.maxNewTokens == nil)
        #expect(parameters.minLength == nil && parameters.minNewTokens == nil)
        #expect(parameters.lengthPenalty == 1 && parameters.earlyStopping == false)
        #expect(parameters.numReturnSequences == 1 && parameters.doSample == false)
    }

    @Test func decodesHuggingFaceNamesWithDefaults() throws {
        let empty = try JSONDecoder().decode(GenerationParameters.self, from: Data("{}".utf8))
        #expect(empty == GenerationParameters())

        let json = #"{"num_beams":1,"max_new_tokens":30,"min_length":3,"do_sample":true,"top_p":0.9,"top_k":0,"#
            + #""seed":42,"repetition_penalty":1.1,"no_repeat_ngram_size":3,"bad_words":["dog"],"prompt":"a picture of"}"#
        let parameters = try JSONDecoder().decode(GenerationParameters.self, from: Data(json.utf8))
        #expect(parameters.numBeams == 1 && parameters.maxNewTokens == 30 && parameters.minLength == 3)
        #expect(parameters.doSample && parameters.topP == 0.9 && parameters.topK == 0 && parameters.seed == 42)
        #expect(parameters.repetitionPenalty == 1.1 && parameters.noRepeatNgramSize == 3)
        #expect(parameters.badWords == ["dog"] && parameters.prompt == "a picture of")
        #expect(parameters.temperature == 1 && parameters.lengthPenalty == 1)

        let roundTrip = try JSONDecoder().decode(GenerationParameters.self, from: JSONEncoder().encode(parameters))
        #expect(roundTrip == parameters)
    }
}
