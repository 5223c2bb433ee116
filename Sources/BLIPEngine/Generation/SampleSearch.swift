/// Greedy decoding and multinomial sampling, transformers' `_sample`: each row takes the argmax of (or
/// samples from) its processed scores until it produces EOS or reaches the maximum length.
///
/// Several samples run as rows of one batch, like transformers' expanded batch; a finished row is
/// dropped from the decoder (transformers keeps it and appends padding) so it costs nothing more.
struct SampleSearch {
    let rows: Int
    let maxLength: Int
    let eosTokenID: Int32
    let processing: LogitsProcessing
    /// nil: greedy decoding.
    let warping: LogitsWarping?

    func run(prefix: [Int32], model: TokenStepper, random: inout Xoshiro256StarStar,
             checkpoint: () throws -> Void) throws -> [Candidate] {
        let vocabularySize = model.vocabularySize
        var sequences = Array(repeating: prefix, count: rows)
        var logProbabilitySums = Array(repeating: 0.0, count: rows)
        var active = Array(0..<rows)  // unfinished rows, in decoder-row order after the first step
        var decoderRow = Array(repeating: 0, count: rows)  // the prefix ran on one decoder row
        var decoderRows = 1
        var scores = [Float](repeating: 0, count: vocabularySize)
        var processingScratch: [Float] = []
        var warpingScratch = LogitsWarping.Scratch()

        var logits = try feedPrefix(prefix, model, checkpoint)
        while true {
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
            if stillActive.isEmpty { break }
            try checkpoint()
            let sources = stillActive.map { decoderRow[$0] }
            if sources != Array(0..<decoderRows) { model.reorder(sources) }
            decoderRows = sources.count
            for (position, row) in stillActive.enumerated() { decoderRow[row] = position }
            active = stillActive
            logits = try checkedStep(model, active.map { sequences[$0].last! })
        }
        return (0..<rows).map { row in
            let generated = sequences[row].count - prefix.count
            return Candidate(tokenIDs: sequences[row], score: Float(logProbabilitySums[row] / Double(generated)))
        }
    }

    /// The first highest score (torch.argmax) and its log-softmax.
    private func argmax(_ scores: UnsafeMutableBufferPointer<Float>) -> (Int32, Double) {
        var best = 0
        for i in scores.indices where scores[i] > scores[best] { best = i }
        return (Int32(best), GenerationMath.logProbability(scores, best))
    }

    /// Draws from softmax(scores) (torch.multinomial's distribution, not its random stream).
    private func sample(_ scores: UnsafeMutableBufferPointer<Float>, _ random: inout Xoshiro256StarStar) -> (Int32, Double) {
        var maximum = -Float.infinity
        for x in scores where x > maximum { maximum = x }
        var total = 0.0
        for x in scores { total += GenerationMath.expDouble(Double(x - maximum)) }
        let target = random.nextUnit() * total
        var cumulative = 0.0
        var chosen = -1
        for i in scores.indices where scores[i] != -.infinity {
            cumulative += GenerationMath.expDouble(Double(scores[i] - maximum))
            chosen = i
            if cumulative > target { break }
        }
        return (Int32(chosen), GenerationMath.logProbability(scores, chosen))
    }
}
