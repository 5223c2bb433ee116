import Foundation
@testable import BLIPEngine

/// The reference model of `scripts/reference/make_generation_cases.py` as a `TokenStepper`: the logits
/// after token x_t at position t are A[x_t] + B[x_{t-1}] + C[t] (B's last row when there is no x_{t-1}).
/// It also checks that the generator keeps the `TokenStepper` contract and counts its calls.
final class GenerationTinyLM: TokenStepper {
    let vocabularySize: Int
    private let a: [Float]  // (vocab, vocab)
    private let b: [Float]  // (vocab + 1, vocab)
    private let c: [Float]  // (positions, vocab)
    private var rows: [[Int32]] = [[]]  // a fresh stepper has one empty row
    private var logits = UnsafeMutableBufferPointer<Float>.allocate(capacity: 0)
    private(set) var steps = 0
    private(set) var reorders: [[Int]] = []
    private(set) var contractViolations: [String] = []

    init(fixture: GenerationFixture) {
        vocabularySize = fixture.vocabSize
        a = fixture.a.flatMap { $0 }
        b = fixture.b.flatMap { $0 }
        c = fixture.c.flatMap { $0 }
    }

    func step(_ tokens: [Int32]) throws -> UnsafeBufferPointer<Float> {
        steps += 1
        if tokens.count != rows.count {
            contractViolations.append("step with \(tokens.count) tokens for \(rows.count) rows")
        }
        let v = vocabularySize
        logits.deallocate()
        logits = .allocate(capacity: tokens.count * v)
        for (r, token) in tokens.enumerated() {
            if r < rows.count { rows[r].append(token) } else { rows.append([token]) }
            let sequence = rows[r]
            let last = Int(sequence[sequence.count - 1])
            let previous = sequence.count >= 2 ? Int(sequence[sequence.count - 2]) : v
            let position = sequence.count - 1
            for i in 0..<v {
                logits[r * v + i] = (a[last * v + i] + b[previous * v + i]) + c[position * v + i]
            }
        }
        return UnsafeBufferPointer(logits)
    }

    deinit { logits.deallocate() }

    func reorder(_ sources: [Int]) {
        reorders.append(sources)
        if sources.isEmpty || sources.contains(where: { !rows.indices.contains($0) }) {
            contractViolations.append("reorder \(sources) of \(rows.count) rows")
            return
        }
        if sources == Array(rows.indices) {
            contractViolations.append("reorder \(sources) changes nothing")
        }
        rows = sources.map { rows[$0] }
    }
}

/// `Tests/Fixtures/generation/cases.json`, written by `scripts/reference/make_generation_cases.py`.
struct GenerationFixture: Decodable, Sendable {
    let vocabSize: Int
    let pad: Int32
    let bos: Int32
    let eos: Int32
    let a: [[Float]]
    let b: [[Float]]
    let c: [[Float]]
    let cases: [Case]
    let warperCases: [WarperCase]

    struct Expected: Decodable, Sendable {
        let tokens: [Int32]
        let score: Float
    }

    struct Case: Decodable, Sendable, CustomStringConvertible {
        let name: String
        let prefix: [Int32]
        let parameters: GenerationParameters
        let badWordsIDs: [[Int32]]
        let earlyStoppingNever: Bool
        let expected: [Expected]
        var description: String { name }

        enum CodingKeys: String, CodingKey {
            case name, prefix, parameters, expected
            case badWordsIDs = "bad_words_ids"
            case earlyStoppingNever = "early_stopping_never"
        }
    }

    struct WarperCase: Decodable, Sendable, CustomStringConvertible {
        let name: String
        let logits: [Float?]  // nil: −∞
        let temperature: Float
        let topK: Int
        let topP: Float
        let minTokensToKeep: Int
        let expected: [Float?]
        var description: String { name }

        enum CodingKeys: String, CodingKey {
            case name, logits, temperature, expected
            case topK = "top_k"
            case topP = "top_p"
            case minTokensToKeep = "min_tokens_to_keep"
        }
    }

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size"
        case pad, bos, eos, a, b, c, cases
        case warperCases = "warper_cases"
    }

    static let url = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/generation/cases.json")

    /// nil when the fixture is missing or unreadable (a test reports that).
    static let shared: GenerationFixture? = {
        guard let data = try? Data(contentsOf: url) else { return nil }
        return try? JSONDecoder().decode(GenerationFixture.self, from: data)
    }()
}
