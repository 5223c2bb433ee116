import Testing
@testable import BLIPEngine

/// Sampling (which cannot match torch's random stream) and the generator's contract: reproducible for a
/// seed, degenerate settings equal greedy decoding, rows follow the samples, errors and cancellation.
@Suite struct GenerationSamplingTests {
    static let prefix: [Int32] = [1, 7, 12, 5]

    static func run(_ parameters: GenerationParameters, prefix: [Int32] = prefix, badWords: [[Int32]] = [],
                    checkpoint: () throws -> Void = {}) throws -> (candidates: [Candidate], model: GenerationTinyLM) {
        let fixture = try #require(GenerationFixture.shared)
        let model = GenerationTinyLM(fixture: fixture)
        let generator = Generator(eosTokenID: fixture.eos, padTokenID: fixture.pad)
        let candidates = try generator.generate(prefix: prefix, parameters: parameters, badWordIDs: badWords,
                                                model: model, checkpoint: checkpoint)
        return (candidates, model)
    }

    static func sampling(seed: UInt64?, _ change: (inout GenerationParameters) -> Void = { _ in }) -> GenerationParameters {
        var parameters = GenerationParameters()
        parameters.numBeams = 1
        parameters.doSample = true
        parameters.seed = seed
        parameters.maxNewTokens = 30
        parameters.minNewTokens = 0
        parameters.temperature = 1.5
        parameters.topK = 0
        change(&parameters)
        return parameters
    }

    @Test func sameSeedSameOutput() throws {
        for seed: UInt64 in [0, 1, 42, .max] {
            let first = try Self.run(Self.sampling(seed: seed)).candidates
            let second = try Self.run(Self.sampling(seed: seed)).candidates
            #expect(first == second, "seed \(seed)")
        }
    }

    @Test func seedsDiffer() throws {
        let outputs = try (0..<8).map { try Self.run(Self.sampling(seed: UInt64($0))).candidates[0].tokenIDs }
        #expect(Set(outputs).count >= 4, "8 seeds gave only \(Set(outputs).count) different samples")
    }

    @Test func topKOneAndTinyTopPAreGreedy() throws {
        var greedy = GenerationParameters()
        greedy.numBeams = 1
        greedy.maxNewTokens = 30
        greedy.minNewTokens = 3
        greedy.repetitionPenalty = 1.2
        let expected = try Self.run(greedy).candidates[0].tokenIDs
        for seed: UInt64 in [3, 4] {
            let topK = try Self.run(Self.sampling(seed: seed) {
                $0.topK = 1; $0.minNewTokens = 3; $0.repetitionPenalty = 1.2
            }).candidates[0]
            #expect(topK.tokenIDs == expected)
            #expect(topK.score == 0, "one token left: probability 1")
            let topP = try Self.run(Self.sampling(seed: seed) {
                $0.topP = 1e-6; $0.minNewTokens = 3; $0.repetitionPenalty = 1.2
            }).candidates[0]
            #expect(topP.tokenIDs == expected)
        }
    }

    @Test func severalSamplesRunAsRows() throws {
        let (candidates, model) = try Self.run(Self.sampling(seed: 7) { $0.numReturnSequences = 4; $0.maxNewTokens = 40 })
        #expect(candidates.count == 4)
        #expect(model.contractViolations.isEmpty, "\(model.contractViolations)")
        #expect(model.reorders.first == [0, 0, 0, 0], "the prefix row is widened to one row per sample")
        for candidate in candidates {
            #expect(Array(candidate.tokenIDs.prefix(4)) == Self.prefix)
            #expect(candidate.tokenIDs.last == 3 || candidate.tokenIDs.count == 44)
            #expect(candidate.score < 0 && candidate.score.isFinite)
        }
        #expect(Set(candidates.map(\.tokenIDs)).count > 1)
        // Finished samples leave the decoder: the longest one alone sets the number of steps.
        let longest = candidates.map { $0.tokenIDs.count }.max()!
        #expect(model.steps == longest - 1)
    }

    @Test func beamSamplingIsReproducible() throws {
        let parameters = Self.sampling(seed: 11) { $0.numBeams = 3; $0.numReturnSequences = 3; $0.topK = 5 }
        let (first, model) = try Self.run(parameters)
        let second = try Self.run(parameters).candidates
        #expect(first == second)
        #expect(first.count == 3)
        #expect(model.contractViolations.isEmpty, "\(model.contractViolations)")
        #expect(zip(first, first.dropFirst()).allSatisfy { $0.score >= $1.score }, "best first")
    }

    @Test func greedyDecodingUsesOneRow() throws {
        var parameters = GenerationParameters()
        parameters.numBeams = 1
        parameters.maxNewTokens = 10
        parameters.minNewTokens = 10
        let (candidates, model) = try Self.run(parameters)
        #expect(candidates[0].tokenIDs.count == 14)
        #expect(model.reorders.isEmpty)
        #expect(model.steps == 4 + 9)
    }

    struct Stop: Error {}

    @Test func checkpointStopsGeneration() throws {
        var calls = 0
        #expect(throws: Stop.self) {
            _ = try Self.run(GenerationParameters(), checkpoint: {
                calls += 1
                if calls == 6 { throw Stop() }
            })
        }
        #expect(calls == 6)
    }

    @Test func rejectsImpossibleInputs() throws {
        var parameters = GenerationParameters()
        parameters.maxLength = 4
        #expect(throws: GenerationError.prefixTooLong(length: 4, maxLength: 4)) { try Self.run(parameters) }
        #expect(throws: GenerationError.emptyPrefix) { try Self.run(GenerationParameters(), prefix: []) }
        #expect(throws: GenerationError.tokenOutOfRange(token: 40, vocabularySize: 40)) {
            try Self.run(GenerationParameters(), badWords: [[40]])
        }
        #expect(throws: GenerationError.emptyBadWord) { try Self.run(GenerationParameters(), badWords: [[]]) }
        parameters = GenerationParameters()
        parameters.temperature = 0
        #expect(throws: GenerationError.self) { try Self.run(parameters) }
    }

    @Test func randomSeedWhenNil() throws {
        let outputs = try (0..<6).map { _ in try Self.run(Self.sampling(seed: nil)).candidates[0].tokenIDs }
        #expect(Set(outputs).count > 1)
    }
}
