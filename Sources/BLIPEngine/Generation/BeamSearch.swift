#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Beam search (and beam sampling) exactly as transformers 5.24's `_beam_search`, for one prefix.
///
/// Each step takes log-softmax of every beam's logits, applies the processors to the log-probabilities,
/// adds the beam's running score, and keeps the top 2 × beams continuations of all beams × vocabulary
/// (`_get_top_k_continuations`; twice as many as beams so that enough remain when some end with EOS).
/// Of those, the best beams that did not just finish keep running (`_get_running_beams_for_next_iteration`);
/// the ones among the top `numBeams` that did finish (EOS, or the maximum length) compete with the
/// finished set under the length penalty (`_update_finished_beams`).
///
/// transformers' exact float32 arithmetic is kept, including its −1e9 sentinels: beams 2… start at
/// −1e9 so that the first step draws only from beam 1, finished continuations get −1e9 added so they
/// cannot keep running, and the finished set starts as `numBeams` placeholders scored −1e9.
///
/// Surprises in transformers worth knowing:
/// - The length-penalty denominator counts generated tokens including the EOS (cur_len + 1 − prompt).
/// - With `early_stopping=False` the stop test divides the best running score by the *current*
///   generated length ** length_penalty, not the best reachable one, so with a positive length penalty
///   a longer beam that would have won can be cut off; `"never"` uses the maximum length instead.
/// - The test compares against the worst finished score only once all `numBeams` slots are finished
///   (an empty slot counts as −1e9, which any running beam beats).
/// - The returned sequences are padded with `pad_token_id or eos_token_id`: Python's `or` on a
///   pad id of 0 (BLIP's `[PAD]`) falls through to EOS, so padded beam outputs end in runs of `[SEP]`
///   rather than `[PAD]` (greedy/sampling outputs pad with `[PAD]`). Candidates here are never padded.
/// - Beam sampling asks torch.multinomial for 2 × beams distinct tokens, which fails when top-k/top-p
///   leave fewer; here the remaining slots take the best-scored tokens instead.
final class BeamSearch: DecodingSearch {
    let numBeams: Int
    let numReturnSequences: Int
    let lengthPenalty: Float
    let earlyStopping: BeamEarlyStopping
    let maxLength: Int
    let eosTokenID: Int32
    let processing: LogitsProcessing
    /// Beam sampling when set (with `minTokensToKeep` 2).
    let warping: LogitsWarping?
    let vocabularySize: Int
    private var random: Xoshiro256StarStar

    private static let sentinel: Float = -1.0e9

    // The search state between steps.
    private var feed: PrefixFeed
    private let promptLength: Int
    private let beamsToKeep: Int  // max(2, 1 + number of EOS ids) × beams, with one EOS id
    private var running: [[Int32]]
    private var runningScores: [Float]
    private var finished: [[Int32]]
    private var finishedScores: [Float]
    private var isFinished: [Bool]
    private var improvementPossible = true  // transformers' is_early_stop_heuristic_unsatisfied
    private var currentLength: Int
    private var decoderRow: [Int]  // the prefix runs on one decoder row
    private var decoderRows = 1
    private var accumulated: [Float]  // (beams, vocab)
    private var processingScratch: [Float] = []
    private var warpingScratch = LogitsWarping.Scratch()
    private var samplingWeights: [Double] = []

    init(prefix: [Int32], numBeams: Int, numReturnSequences: Int, lengthPenalty: Float, earlyStopping: BeamEarlyStopping,
         maxLength: Int, eosTokenID: Int32, processing: LogitsProcessing, warping: LogitsWarping?,
         vocabularySize: Int, random: Xoshiro256StarStar) {
        self.numBeams = numBeams
        self.numReturnSequences = numReturnSequences
        self.lengthPenalty = lengthPenalty
        self.earlyStopping = earlyStopping
        self.maxLength = maxLength
        self.eosTokenID = eosTokenID
        self.processing = processing
        self.warping = warping
        self.vocabularySize = vocabularySize
        self.random = random
        feed = PrefixFeed(prefix)
        promptLength = prefix.count
        beamsToKeep = 2 * numBeams
        running = Array(repeating: prefix, count: numBeams)
        runningScores = [Float](repeating: Self.sentinel, count: numBeams)
        runningScores[0] = 0
        finished = Array(repeating: prefix, count: numBeams)
        finishedScores = [Float](repeating: Self.sentinel, count: numBeams)
        isFinished = [Bool](repeating: false, count: numBeams)
        currentLength = prefix.count
        decoderRow = [Int](repeating: 0, count: numBeams)
        accumulated = [Float](repeating: 0, count: numBeams * vocabularySize)
    }

    func start() -> SearchStep { feed.next()! }

    func advance(_ logits: UnsafeBufferPointer<Float>) -> SearchStep {
        if let step = feed.next() { return step }
        let vocabularySize = self.vocabularySize
        // b. Log-probabilities, processed, plus each beam's running score.
        accumulated.withUnsafeMutableBufferPointer { all in
            for beam in 0..<numBeams {
                let row = UnsafeMutableBufferPointer(rebasing: all[beam * vocabularySize..<(beam + 1) * vocabularySize])
                let start = decoderRow[beam] * vocabularySize
                _ = row.initialize(from: logits[start..<start + vocabularySize])
                GenerationMath.logSoftmax(row)
                processing.apply(to: row, sequence: running[beam], scratch: &processingScratch)
                warping?.apply(to: row, scratch: &warpingScratch)
                let score = runningScores[beam]
                for i in row.indices { row[i] += score }
            }
        }

        // c. The top 2 × beams continuations over all beams.
        let top: (values: [Float], indices: [Int])
        if warping != nil {
            top = sampleContinuations(accumulated, count: beamsToKeep, &samplingWeights, &random)
        } else {
            let selection = TopKSelection.of(accumulated, k: beamsToKeep)
            top = (selection.values, selection.indices)
        }
        let origins = top.indices.map { $0 / vocabularySize }
        let candidates = top.indices.map { running[$0 / vocabularySize] + [Int32($0 % vocabularySize)] }

        // d. Which continuations finish: EOS or the maximum length (MaxLengthCriteria, EosTokenCriteria).
        let hits = candidates.map { $0.last! == eosTokenID || $0.count >= maxLength }

        // e. The best continuations that did not finish keep running.
        var runningSelection = TopKSelection(k: numBeams)
        for j in top.values.indices {
            runningSelection.offer(hits[j] ? top.values[j] + Self.sentinel : top.values[j], at: j)
        }
        let runningOrigins = runningSelection.indices.map { origins[$0] }
        running = runningSelection.indices.map { candidates[$0] }
        runningScores = runningSelection.values

        // f. Finished continuations among the top `numBeams` compete with the finished set.
        let denominator = Float(pow(Double(currentLength + 1 - promptLength), Double(lengthPenalty)))
        let finishedSetIsFull = isFinished.allSatisfy { $0 } && earlyStopping == .whenAllFinished
        var merged = TopKSelection(k: numBeams)
        for j in 0..<numBeams { merged.offer(finishedScores[j], at: j) }
        for j in top.values.indices {
            let justFinished = hits[j] && j < numBeams
            var score = top.values[j] / denominator
            if finishedSetIsFull { score += Self.sentinel }
            if !improvementPossible { score += Self.sentinel }
            if !justFinished { score += Self.sentinel }
            merged.offer(score, at: numBeams + j)
        }
        let previousFinished = finished
        let previousIsFinished = isFinished
        finished = merged.indices.map { $0 < numBeams ? previousFinished[$0] : candidates[$0 - numBeams] }
        isFinished = merged.indices.map {
            $0 < numBeams ? previousIsFinished[$0] : (hits[$0 - numBeams] && $0 - numBeams < numBeams)
        }
        finishedScores = merged.values

        // g. Whether to go on (_check_early_stop_heuristic, _beam_search_has_unfinished_sequences).
        currentLength += 1
        let hypotheticalLength = earlyStopping == .never && lengthPenalty > 0
            ? maxLength - promptLength : currentLength - promptLength
        let bestRunning = runningScores[0] / Float(pow(Double(hypotheticalLength), Double(lengthPenalty)))
        let worstFinished = finishedScores.min()!
        improvementPossible = improvementPossible
            && isFinished.contains { bestRunning > ($0 ? worstFinished : Self.sentinel) }
        let allFinishedAndDone = isFinished.allSatisfy { $0 } && earlyStopping == .whenAllFinished
        if !improvementPossible || allFinishedAndDone || hits.allSatisfy({ $0 }) {
            return .done((0..<numReturnSequences).map {
                Candidate(tokenIDs: finished[$0], score: finishedScores[$0],
                          finishReason: finished[$0].last == eosTokenID ? .eos : .length)
            })
        }

        let sources = runningOrigins.map { decoderRow[$0] }
        let reorder = sources != Array(0..<decoderRows) ? sources : nil
        decoderRows = numBeams
        decoderRow = Array(0..<numBeams)
        return .step(tokens: running.map { $0.last! }, reorder: reorder)
    }

    /// Beam sampling: `count` distinct continuations drawn without replacement from softmax over all
    /// beams × vocabulary (torch.multinomial's distribution), then sorted by score, best first.
    private func sampleContinuations(_ scores: [Float], count: Int, _ weights: inout [Double],
                                     _ random: inout Xoshiro256StarStar) -> (values: [Float], indices: [Int]) {
        var maximum = -Float.infinity
        for x in scores where x > maximum { maximum = x }
        weights.removeAll(keepingCapacity: true)
        var total = 0.0
        for x in scores {
            let w = x == -.infinity ? 0 : exp(Double(x - maximum))
            weights.append(w)
            total += w
        }
        var chosen: [Int] = []
        for _ in 0..<count {
            var pick = -1
            if total > 0 {
                let target = random.nextUnit() * total
                var cumulative = 0.0
                for i in weights.indices where weights[i] > 0 {
                    cumulative += weights[i]
                    pick = i
                    if cumulative > target { break }
                }
            }
            if pick < 0 || weights[pick] == 0 {
                // Fewer tokens left with probability > 0 than needed: take the best-scored remaining one.
                var best = -1
                for i in scores.indices where !chosen.contains(i) && (best < 0 || scores[i] > scores[best]) { best = i }
                pick = best
            }
            total -= weights[pick]
            weights[pick] = 0
            chosen.append(pick)
        }
        // Stable sort keeps the sampling order among equal scores.
        let ordered = chosen.enumerated().sorted {
            scores[$0.element] > scores[$1.element] || (scores[$0.element] == scores[$1.element] && $0.offset < $1.offset)
        }.map(\.element)
        return (ordered.map { scores[$0] }, ordered)
    }
}
