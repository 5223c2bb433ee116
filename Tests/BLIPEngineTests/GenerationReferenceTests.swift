import Testing
@testable import BLIPEngine

/// Greedy decoding and beam search against transformers 5.24 `generate()` on the tiny reference model
/// (`scripts/reference/make_generation_cases.py`): identical tokens, scores within 1e-5 relative.
@Suite struct GenerationReferenceTests {
    static let cases = GenerationFixture.shared?.cases ?? []
    static let warperCases = GenerationFixture.shared?.warperCases ?? []

    @Test func fixtureIsPresent() throws {
        let fixture = try #require(GenerationFixture.shared, "cannot read \(GenerationFixture.url.path)")
        #expect(fixture.cases.count >= 100)
        #expect(fixture.warperCases.count >= 50)
    }

    @Test(arguments: cases)
    func matchesTransformers(_ testCase: GenerationFixture.Case) throws {
        let fixture = try #require(GenerationFixture.shared)
        let model = GenerationTinyLM(fixture: fixture)
        let generator = Generator(eosTokenID: fixture.eos, padTokenID: fixture.pad)
        let candidates = try generator.generate(
            prefix: testCase.prefix, parameters: testCase.parameters, badWordIDs: testCase.badWordsIDs,
            earlyStopping: testCase.earlyStoppingNever ? .never : (testCase.parameters.earlyStopping ? .whenAllFinished : .heuristic),
            model: model, checkpoint: {})

        #expect(model.contractViolations.isEmpty, "\(testCase.name): \(model.contractViolations)")
        try #require(candidates.count == testCase.expected.count,
                     "\(testCase.name): \(candidates.count) candidates, expected \(testCase.expected.count)")
        for (rank, (got, want)) in zip(candidates, testCase.expected).enumerated() {
            #expect(got.tokenIDs == want.tokens, "\(testCase.name) #\(rank): tokens \(got.tokenIDs), transformers \(want.tokens)")
            let tolerance = 1e-5 * max(abs(want.score), 1e-3)
            #expect(abs(got.score - want.score) <= tolerance,
                    "\(testCase.name) #\(rank): score \(got.score), transformers \(want.score)")
        }
    }

    /// Temperature, top-k and top-p against transformers' warpers on fixed logits (ties included).
    @Test(arguments: warperCases)
    func warpersMatchTransformers(_ testCase: GenerationFixture.WarperCase) {
        let warping = LogitsWarping(temperature: testCase.temperature, topK: testCase.topK, topP: testCase.topP,
                                    minTokensToKeep: testCase.minTokensToKeep)
        var scores = testCase.logits.map { $0 ?? -.infinity }
        var scratch = LogitsWarping.Scratch()
        scores.withUnsafeMutableBufferPointer { warping.apply(to: $0, scratch: &scratch) }
        let expected = testCase.expected.map { $0 ?? -.infinity }
        let mismatches = zip(scores, expected).enumerated().filter { $0.element.0 != $0.element.1 }
        #expect(mismatches.isEmpty, "\(testCase.name): token \(mismatches.first.map { "\($0.offset): \($0.element.0) vs \($0.element.1)" } ?? "")")
    }
}
