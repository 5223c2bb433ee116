import Testing
@testable import BLIPEngine

/// Issue 13: sampling never yields an invalid token, whatever the scores: all −∞ (every token
/// forbidden), NaN (a broken model), or ±∞ from a tiny temperature.
@Suite struct SamplingEdgeTests {
    /// Every row gets the same logits, whatever came before.
    final class FixedLogits: TokenStepper {
        let vocabularySize: Int
        let row: [Float]
        private var rows = 1
        private var buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: 0)

        init(_ row: [Float]) {
            self.row = row
            vocabularySize = row.count
        }

        deinit { buffer.deallocate() }

        func step(_ tokens: [Int32]) throws -> UnsafeBufferPointer<Float> {
            rows = tokens.count
            buffer.deallocate()
            buffer = .allocate(capacity: rows * vocabularySize)
            for r in 0..<rows { for i in 0..<vocabularySize { buffer[r * vocabularySize + i] = row[i] } }
            return UnsafeBufferPointer(buffer)
        }

        func reorder(_ sources: [Int]) { rows = sources.count }
    }

    static let eos: Int32 = 2

    static func sample(_ logits: [Float], temperature: Float = 1, topK: Int = 0, seed: UInt64 = 7) throws -> [Int32] {
        var p = GenerationParameters()
        p.numBeams = 1
        p.doSample = true
        p.seed = seed
        p.temperature = temperature
        p.topK = topK
        p.maxNewTokens = 4
        p.minNewTokens = 0
        let generator = Generator(eosTokenID: eos, padTokenID: 0)
        let candidates = try generator.generate(prefix: [1], parameters: p, badWordIDs: [], model: FixedLogits(logits),
                                                checkpoint: {})
        return Array(candidates[0].tokenIDs.dropFirst())
    }

    @Test func allMinusInfinityEndsWithEOSNotTokenMinusOne() throws {
        let tokens = try Self.sample([Float](repeating: -.infinity, count: 8))
        #expect(tokens == [Self.eos], "\(tokens)")
    }

    @Test func nanScoresAreNeverChosenAndNeverMeanTheLastToken() throws {
        for seed: UInt64 in 0..<8 {
            let tokens = try Self.sample([Float](repeating: .nan, count: 8), seed: seed)
            #expect(tokens == [Self.eos], "seed \(seed): \(tokens)")
        }
        // A few NaNs among finite scores: only the finite ones are candidates.
        var logits = [Float](repeating: .nan, count: 8)
        logits[3] = 0.5
        logits[5] = 0.25
        for seed: UInt64 in 0..<8 {
            let tokens = try Self.sample(logits, seed: seed)
            #expect(tokens.allSatisfy { $0 == 3 || $0 == 5 }, "seed \(seed): \(tokens)")
        }
    }

    /// A tiny (normal) temperature turns logits into ±∞ when divided plainly; sampling must then
    /// act like greedy decoding, the limit of a vanishing temperature.
    @Test func aTinyTemperatureIsGreedy() throws {
        // 30 / 2e-38 overflows Float: plain division makes every positive logit +∞.
        let logits: [Float] = [10, 30, 25, -10, 29, 5, 29.99, 15]
        #expect((logits[1] / 2e-38).isInfinite)
        for seed: UInt64 in 0..<8 {
            let tokens = try Self.sample(logits, temperature: 2e-38, seed: seed)
            #expect(tokens == [1, 1, 1, 1], "seed \(seed): \(tokens)")
        }
    }
}
