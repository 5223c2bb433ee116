#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Small numeric helpers of the generation algorithms (namespaced so they cannot clash with the
/// model kernels).
enum GenerationMath {
    /// In-place log-softmax over one row, computed as torch does: x − max − log Σ exp(x − max).
    /// A row that is −∞ everywhere stays −∞ (torch would give NaN; it cannot happen with real logits).
    static func logSoftmax(_ row: UnsafeMutableBufferPointer<Float>) {
        var maximum = -Float.infinity
        for x in row where x > maximum { maximum = x }
        guard maximum.isFinite else { return }
        var sum: Float = 0
        for x in row { sum += exp(x - maximum) }
        let logSum = log(sum)
        for i in row.indices { row[i] = (row[i] - maximum) - logSum }
    }

    /// log softmax(scores)[index], in double.
    static func logProbability(_ scores: UnsafeMutableBufferPointer<Float>, _ index: Int) -> Double {
        var maximum = -Float.infinity
        for x in scores where x > maximum { maximum = x }
        var total = 0.0
        for x in scores { total += exp(Double(x - maximum)) }
        return Double(scores[index] - maximum) - log(total)
    }

    /// `exp` in double, for probabilities summed over the vocabulary.
    static func expDouble(_ x: Double) -> Double { exp(x) }

    /// The k-th largest value (1-based k) of `values`, which it reorders (quickselect, linear on average).
    static func kthLargest(_ values: UnsafeMutableBufferPointer<Float>, _ k: Int) -> Float {
        var low = 0
        var high = values.count - 1
        let target = k - 1  // index in descending order
        while low < high {
            let pivot = values[(low + high) / 2]
            var i = low
            var j = high
            while i <= j {
                while values[i] > pivot { i += 1 }
                while values[j] < pivot { j -= 1 }
                if i <= j {
                    values.swapAt(i, j)
                    i += 1
                    j -= 1
                }
            }
            if target <= j { high = j } else if target >= i { low = i } else { return values[target] }
        }
        return values[target]
    }
}
