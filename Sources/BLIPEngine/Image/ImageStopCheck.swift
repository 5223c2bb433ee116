/// When long image work (decoding rows, resizing) must give up: the call's deadline passed, or
/// the call was cancelled. Checked every few thousand rows and after every block of resize
/// outputs, so a hostile image costs at most its deadline plus one slice of work, and a cancelled
/// call frees the engine within one slice rather than after the whole decode.
public struct ImageStopCheck: Sendable {
    /// When to stop with ``ImageError/deadlineExceeded``; `nil` for never.
    public let deadline: ContinuousClock.Instant?
    /// Once set, stop with ``ImageError/cancelled``; `nil` when the work cannot be cancelled.
    public let cancellation: CancellationFlag?

    /// - Parameters:
    ///   - deadline: when the work must stop; `nil` for never.
    ///   - cancellation: a flag another thread may set to stop the work.
    public init(deadline: ContinuousClock.Instant? = nil, cancellation: CancellationFlag? = nil) {
        self.deadline = deadline
        self.cancellation = cancellation
    }

    /// Never stops.
    public static let none = ImageStopCheck()

    /// Throws once the work should stop. A cancellation wins over a passed deadline: the caller
    /// asked for it, and it is the answer the caller expects.
    /// - Throws: ``ImageError/cancelled`` or ``ImageError/deadlineExceeded``.
    @inline(__always)
    func check() throws(ImageError) {
        if let cancellation, cancellation.isSet { throw .cancelled }
        if let deadline, ContinuousClock.now >= deadline { throw .deadlineExceeded }
    }
}
