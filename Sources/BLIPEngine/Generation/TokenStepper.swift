/// What generation needs from the text decoder. Rows are beams (or 1 for greedy decoding and one row
/// per unfinished sample when sampling several sequences).
///
/// A fresh stepper has one empty row. The generator feeds the prefix one token per `step` on that row,
/// then widens and narrows the rows with `reorder` as beams are re-selected or samples finish.
public protocol TokenStepper: AnyObject {
    /// Number of logits per row.
    var vocabularySize: Int { get }

    /// Appends `tokens[r]` to row `r` and returns the next-token logits.
    /// - Parameter tokens: one token per current row (`tokens.count` is the current row count).
    /// - Returns: rows × `vocabularySize` logits, row-major, valid until the next call of `step` or `reorder`.
    func step(_ tokens: [Int32]) throws -> UnsafeBufferPointer<Float>

    /// Re-arranges rows: new row `i` continues old row `sources[i]`; `sources.count` becomes the row count.
    /// Sources may repeat (a beam that continues in two ways) or be left out (a finished sample).
    func reorder(_ sources: [Int])
}
