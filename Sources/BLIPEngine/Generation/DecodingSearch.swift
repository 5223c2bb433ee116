/// What a search asks the decoder for next.
enum SearchStep {
    /// Re-arrange the rows by `reorder` (new row i continues old row `reorder[i]`; `nil` keeps
    /// them), then append `tokens[r]` to row r and hand back the next-token logits.
    case step(tokens: [Int32], reorder: [Int]?)
    /// The search is over: its candidates, in the order `Generator.generate` documents.
    case done([Candidate])
}

/// A generation algorithm as a value that something else advances, one decoder step at a time: it
/// holds no thread and never calls the decoder. The engine loop (`DecodeLoop`) advances many of
/// them together on one batched step; `Generator.generate` drives one against a `TokenStepper`.
///
/// The first steps feed the prefix (`[DEC]` and the prompt), one token per step on one row; the
/// logits of all but the last prefix token are not looked at.
protocol DecodingSearch: AnyObject {
    /// The first step: the prefix's first token on the one row a fresh decoder has.
    func start() -> SearchStep
    /// Advances on the logits of the step asked for last, (rows, vocab) row-major.
    func advance(_ logits: UnsafeBufferPointer<Float>) -> SearchStep
}

/// Feeds a prefix one token per step: the part every search starts with.
struct PrefixFeed {
    let prefix: [Int32]
    private var fed = 0

    init(_ prefix: [Int32]) { self.prefix = prefix }

    /// The next prefix token's step, or `nil` once the logits just received follow the last one.
    mutating func next() -> SearchStep? {
        guard fed < prefix.count else { return nil }
        fed += 1
        return .step(tokens: [prefix[fed - 1]], reorder: nil)
    }
}
