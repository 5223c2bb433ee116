#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Greedy decoding and multinomial sampling, transformers' `_sample`: each row takes the argmax of (or
/// samples from) its processed scores until it produces EOS or reaches the maximum length.
///
/// Several samples run as rows of one batch, like transformers' expanded batch; a finished row is
/// dropped from the decoder (transformers keeps it and appends padding) so it costs nothing more.
final class SampleSearch: DecodingSearch {
    let rows: Int
    let maxLength: Int
    let eosTokenID: Int32
    let processing: LogitsProcessing
    /// nil: greedy decoding.
    let warping: LogitsWarping?
    let vocabularySize: Int
    private var random: Xoshiro256StarStar

    // The search state between steps.
    private var feed: PrefixFeed
    private var sequences: [[Int32]]
    private var logProbabilitySums: [Double]
    private var active: [Int]  // unfinished rows, in decoder-row order after the first step
    private var decoderRow: [Int]  // the prefix runs on one decoder row
    private var decoderRows = 1
    private var scores: [Float]
    private var processingScratch: [Float] = []
    private var warpingScratch = LogitsWarping.Scratch()

    init(prefix: [Int32], rows: Int, maxLength: Int, eosTokenID: Int32, processing: LogitsProcessing,
         warping: LogitsWarping?, vocabularySize: Int, random: Xoshiro256StarStar) {
        self.rows = rows
        self.maxLength = maxLength
        self.eosTokenID = eosTokenID
        self.processing = processing
        self.warping = warping
        self.vocabularySize = vocabularySize
        self.random = random
        feed = PrefixFeed(prefix)
        sequences = Array(repeating: prefix, count: rows)
        logProbabilitySums = Array(repeating: 0.0, count: rows)
        active = Array(0..<rows)
        decoderRow = Array(repeating: 0, count: rows)
        scores = [Float](repeating: 0, count: vocabularySize)
    }

    func start() -> SearchStep { feed.next()! }

    func advance(_ logits: UnsafeBufferPointer<Float>) -> SearchStep {
        if let step = feed.next() { return step }
        let vocabularySize = self.vocabularySize
        var stillActive: [Int] = []
        for row in active {
            let chosen: (token: Int32, logProbability: Double) = scores.withUnsafeMutableBufferPointer { buffer in
                let start = decoderRow[row] * vocabularySize
                _ = buffer.initialize(from: logits[start..<start + vocabularySize])
                processing.apply(to: buffer, sequence: sequences[row], scratch: &processingScratch)
                if let warping {
                    warping.apply(to: buffer, scratch: &warpingScratch)
                    return sample(buffer, &random)
                }
                return argmax(buffer)
            }
            sequences[row].append(chosen.token)
            logProbabilitySums[row] += chosen.logProbability
            if chosen.token != eosTokenID && sequences[row].count < maxLength {
                stillActive.append(row)
            }
        }
        if stillActive.isEmpty {
            let prefixLength = feed.prefix.count
            return .done((0..<rows).map { row in
                let generated = sequences[row].count - prefixLength
                return Candidate(tokenIDs: sequences[row], score: Float(logProbabilitySums[row] / Double(generated)),
                                 finishReason: sequences[row].last == eosTokenID ? .eos : .length)
            })
        }
        let sources = stillActive.map { decoderRow[$0] }
        let reorder = sources != Array(0..<decoderRows) ? sources : nil
        decoderRows = sources.count
        for (position, row) in stillActive.enumerated() { decoderRow[row] = position }
        active = stillActive
        return .step(tokens: active.map { sequences[$0].last! }, reorder: reorder)
    }

    /// The first highest score (torch.argmax) and its log-softmax. NaN scores are skipped.
    private func argmax(_ scores: UnsafeMutableBufferPointer<Float>) -> (Int32, Double) {
        var best = 0
        for i in scores.indices where scores[i] > scores[best] || scores[best].isNaN { best = i }
        return (Int32(best), GenerationMath.logProbability(scores, best))
    }

    /// Draws from softmax(scores) (torch.multinomial's distribution, not its random stream).
    ///
    /// Scores that are not numbers count as −∞. When nothing is left to choose from (every score
    /// −∞ or NaN: every token forbidden, or a model producing NaN) the row ends with EOS rather than
    /// an invalid token; torch.multinomial would raise instead. When some scores are +∞ they share
    /// all the probability and the first of them is taken.
    private func sample(_ scores: UnsafeMutableBufferPointer<Float>, _ random: inout Xoshiro256StarStar) -> (Int32, Double) {
        var maximum = -Float.infinity
        for x in scores where x > maximum { maximum = x }  // NaN never compares greater
        if maximum == -.infinity { return (eosTokenID, -.infinity) }
        if maximum == .infinity {
            let tied = scores.reduce(0) { $0 + ($1 == .infinity ? 1 : 0) }
            return (Int32(scores.firstIndex(of: .infinity)!), -log(Double(tied)))
        }
        var total = 0.0
        for x in scores where !x.isNaN { total += GenerationMath.expDouble(Double(x - maximum)) }
        let target = random.nextUnit() * total
        var cumulative = 0.0
        var chosen = -1
        for i in scores.indices where scores[i] != -.infinity && !scores[i].isNaN {
            cumulative += GenerationMath.expDouble(Double(scores[i] - maximum))
            chosen = i
            if cumulative > target { break }
        }
        return (Int32(chosen), Double(scores[chosen] - maximum) - log(total))
    }
}
