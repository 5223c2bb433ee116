import Foundation
import Testing
@testable import BLIPEngine

/// Whole captions — image file → tokens → text — against transformers' `generate()` on the tiny
/// fixture models (golden/<model>/generation.json, written by scripts/reference/make_fixtures.py).
@Suite("Captions against transformers")
struct CaptionReferenceTests {
    struct Case: Decodable, CustomTestStringConvertible, Sendable {
        struct Params: Decodable, Sendable {
            var num_beams: Int?, max_new_tokens: Int?, min_new_tokens: Int?, max_length: Int?, min_length: Int?
            var length_penalty: Float?, repetition_penalty: Float?, no_repeat_ngram_size: Int?
            var num_return_sequences: Int?, early_stopping: Bool?, bad_words: [String]?, prompt: String?
        }
        var model = ""  // set after decoding: the folder the file came from
        var name: String
        var image: String
        var params: Params
        var sequences: [[Int32]]
        var texts: [String]
        var scores: [Float]?
        var greedy_margins: [Float]?
        var prompt_length: Int

        enum CodingKeys: String, CodingKey { case name, image, params, sequences, texts, scores, greedy_margins, prompt_length }

        var testDescription: String { "\(model)/\(image)/\(name)" }

        /// transformers' meaning of the case: absent parameters take generate()'s defaults
        /// (greedy, 20 new tokens, no minimum), not this project's COCO defaults.
        var parameters: GenerationParameters {
            var p = GenerationParameters()
            p.numBeams = params.num_beams ?? 1
            p.maxNewTokens = params.max_new_tokens
            p.maxLength = params.max_length
            if p.maxNewTokens == nil && p.maxLength == nil { p.maxNewTokens = 20 }
            p.minNewTokens = params.min_new_tokens
            p.minLength = params.min_length ?? 0
            p.lengthPenalty = params.length_penalty ?? 1
            p.repetitionPenalty = params.repetition_penalty ?? 1
            p.noRepeatNgramSize = params.no_repeat_ngram_size ?? 0
            p.numReturnSequences = params.num_return_sequences ?? 1
            p.earlyStopping = params.early_stopping ?? false
            p.badWords = params.bad_words ?? []
            p.prompt = params.prompt
            return p
        }
    }

    static let cases: [Case] = Fixtures.modelNames.flatMap { model -> [Case] in
        let url = Fixtures.root.appendingPathComponent("golden/\(model)/generation.json")
        guard let data = try? Data(contentsOf: url), let cases = try? JSONDecoder().decode([Case].self, from: data) else { return [] }
        return cases.map { var c = $0; c.model = model; return c }
    }

    static let captioners: [String: Captioner] = Dictionary(uniqueKeysWithValues: Fixtures.modelNames.compactMap { name in
        (try? Captioner(folder: Fixtures.modelFolder(name))).map { (name, $0) }
    })

    /// Below this gap between the two best greedy scores, float32 summation order may legitimately
    /// pick the other token.
    static let nearTie: Float = 1e-4

    @Test func everyModelHasCases() throws {
        for model in Fixtures.modelNames {
            let data = try Data(contentsOf: Fixtures.root.appendingPathComponent("golden/\(model)/generation.json"))
            #expect(try JSONDecoder().decode([Case].self, from: data).count > 0, "no generation cases for \(model)")
        }
    }

    @Test(arguments: cases)
    func captionMatches(_ c: Case) throws {
        let captioner = try #require(Self.captioners[c.model])
        let result = try captioner.caption(image: try Fixtures.imageBytes(c.image), parameters: c.parameters)
        let got = result.candidates.map(\.tokenIDs)
        if got != c.sequences {
            // A greedy divergence at a near tie is not a bug; anything else is.
            if let margins = c.greedy_margins, let first = got.first, let expected = c.sequences.first,
               let step = zip(first, expected).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
                let generatedStep = step - c.prompt_length
                let margin = margins.indices.contains(generatedStep) ? margins[generatedStep] : .infinity
                #expect(margin < Self.nearTie, "\(c.testDescription): diverged at token \(step) with margin \(margin): got \(got), expected \(c.sequences)")
                print("near tie: \(c.testDescription) diverged at token \(step), top-2 margin \(margin)")
            } else {
                Issue.record("\(c.testDescription): got \(got), expected \(c.sequences)")
            }
            return
        }
        #expect(result.candidates.map(\.text) == c.texts, "\(c.testDescription)")
        if let scores = c.scores {
            for (candidate, expected) in zip(result.candidates, scores) {
                print("measured: score \(c.testDescription) |Δ| = \(abs(candidate.score - expected))")
                #expect(abs(candidate.score - expected) <= 1e-4 * max(1, abs(expected)),
                        "\(c.testDescription): score \(candidate.score), expected \(expected)")
            }
        }
    }

    @Test func promptPrefixMatchesTransformers() throws {
        let captioner = try #require(Self.captioners.values.first)
        #expect(captioner.prefix(prompt: "a picture of") == [30522, 1037, 3861, 1997])
        #expect(captioner.prefix(prompt: nil) == [30522])
    }
}
