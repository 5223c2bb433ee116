#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The sampling warpers transformers appends after the processors when `do_sample` is set, in its
/// order: temperature, top-k, top-p. Filtered tokens get −∞.
struct LogitsWarping {
    let temperature: Float
    /// 0 disables.
    let topK: Int
    /// 1 disables.
    let topP: Float
    /// transformers keeps at least this many tokens: 1 for sampling, 2 (EOS count + 1) for beam sampling,
    /// so that a beam can always continue with something other than EOS.
    let minTokensToKeep: Int

    /// Reusable storage for one row.
    struct Scratch {
        var values: [Float] = []
        var order: [Int] = []
        var probabilities: [Float] = []
    }

    func apply(to scores: UnsafeMutableBufferPointer<Float>, scratch: inout Scratch) {
        if temperature != 1 {
            divide(scores, by: temperature)
        }
        if topK != 0 {
            applyTopK(scores, &scratch)
        }
        if topP < 1 {
            applyTopP(scores, &scratch)
        }
    }

    /// `scores / t` as transformers computes it, unless that overflows (a tiny temperature): then
    /// `(scores - max) / t`, the same softmax, in which the best tokens stay 0 instead of becoming
    /// +∞ (and +∞ − +∞ = NaN later). NaN scores become −∞: they can never be chosen.
    private func divide(_ scores: UnsafeMutableBufferPointer<Float>, by t: Float) {
        var maximum = -Float.infinity, largest: Float = 0
        for i in scores.indices {
            if scores[i].isNaN { scores[i] = -.infinity; continue }
            maximum = max(maximum, scores[i])
            if scores[i].isFinite { largest = max(largest, abs(scores[i])) }
        }
        if (largest / t).isFinite || !maximum.isFinite {
            for i in scores.indices { scores[i] /= t }
            return
        }
        for i in scores.indices { scores[i] = (scores[i] - maximum) / t }
    }

    /// Removes every token scoring below the k-th highest score; tokens tied with it stay.
    private func applyTopK(_ scores: UnsafeMutableBufferPointer<Float>, _ scratch: inout Scratch) {
        let k = min(max(topK, minTokensToKeep), scores.count)
        scratch.values.removeAll(keepingCapacity: true)
        scratch.values.append(contentsOf: scores)
        let threshold = scratch.values.withUnsafeMutableBufferPointer { GenerationMath.kthLargest($0, k) }
        for i in scores.indices where scores[i] < threshold { scores[i] = -.infinity }
    }

    /// transformers sorts the scores ascending, takes the cumulative softmax, removes the tokens whose
    /// cumulative probability is <= 1 - top_p (the least likely ones) but always keeps the last
    /// `minTokensToKeep`. Tokens already at −∞ have probability 0 and sort first, so only the finite
    /// ones need sorting. Exact ties sort by token id; torch's unstable sort leaves them in an order that
    /// depends on its introsort (checked: not by index), so which of several tied tokens at the nucleus
    /// boundary survives can differ from transformers. Real logits almost never tie exactly.
    private func applyTopP(_ scores: UnsafeMutableBufferPointer<Float>, _ scratch: inout Scratch) {
        scratch.order.removeAll(keepingCapacity: true)
        for i in scores.indices where scores[i] != -.infinity { scratch.order.append(i) }
        scratch.order.sort { scores[$0] < scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
        let count = scratch.order.count
        guard count > 0 else { return }
        let maxScore = scores[scratch.order[count - 1]]
        var sum: Float = 0
        scratch.probabilities.removeAll(keepingCapacity: true)
        for i in scratch.order {
            let e = exp(scores[i] - maxScore)
            scratch.probabilities.append(e)
            sum += e
        }
        // torch's cumsum accumulates float32 inputs in double on the CPU.
        let threshold = 1 - topP
        let keepFrom = count - min(minTokensToKeep, count)
        var cumulative: Double = 0
        for (rank, i) in scratch.order.enumerated() {
            cumulative += Double(scratch.probabilities[rank] / sum)
            if rank < keepFrom && Float(cumulative) <= threshold { scores[i] = -.infinity }
        }
    }
}
