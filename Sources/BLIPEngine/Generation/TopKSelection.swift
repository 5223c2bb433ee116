/// The k largest of a stream of scores, best first, as `torch.topk` returns them. Exact ties keep the
/// lower index first (torch leaves their order unspecified). k is small (2 × beams), so a sorted
/// insertion buffer is cheaper than sorting beams × vocabulary scores.
struct TopKSelection {
    private(set) var values: [Float] = []
    private(set) var indices: [Int] = []
    let k: Int

    init(k: Int) {
        self.k = k
        values.reserveCapacity(k + 1)
        indices.reserveCapacity(k + 1)
    }

    /// Offers `value` at `index`; indices must be offered in increasing order.
    mutating func offer(_ value: Float, at index: Int) {
        if values.count == k {
            // NaN never enters (comparisons with NaN are false); a NaN score means a broken model.
            guard value > values[k - 1] else { return }
            values.removeLast()
            indices.removeLast()
        } else if value.isNaN {
            return
        }
        var position = values.count
        while position > 0 && value > values[position - 1] { position -= 1 }
        values.insert(value, at: position)
        indices.insert(index, at: position)
    }

    /// The top k of `scores`.
    static func of(_ scores: UnsafeBufferPointer<Float>, k: Int) -> TopKSelection {
        var selection = TopKSelection(k: k)
        for i in scores.indices {
            // Cheap reject before the call: most scores are below the current k-th.
            if selection.values.count == k && !(scores[i] > selection.values[k - 1]) { continue }
            selection.offer(scores[i], at: i)
        }
        return selection
    }

    static func of(_ scores: [Float], k: Int) -> TopKSelection {
        scores.withUnsafeBufferPointer { of($0, k: k) }
    }
}
