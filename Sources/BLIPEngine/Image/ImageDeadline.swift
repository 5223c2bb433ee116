/// When long image work (decoding rows, resizing, normalising) must give up: the call's deadline.
/// Checked every few thousand rows, so a hostile image costs at most its deadline plus one slice
/// of work; `nil` means no deadline.
public struct ImageDeadline: Sendable {
    public let instant: ContinuousClock.Instant?

    public init(_ instant: ContinuousClock.Instant?) { self.instant = instant }

    public static let none = ImageDeadline(nil)

    /// Throws ``ImageError/deadlineExceeded`` once the deadline has passed.
    @inline(__always)
    func check() throws(ImageError) {
        if let instant, ContinuousClock.now >= instant { throw .deadlineExceeded }
    }
}
