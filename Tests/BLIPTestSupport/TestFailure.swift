/// A test's own failure: a precondition of the test that did not hold (a missing binary, a
/// daemon that did not start, a socket call that failed, an answer that did not come).
public struct TestFailure: Error, CustomStringConvertible {
    /// What failed and, where it helps, what to do.
    public var description: String

    /// - Parameter description: What failed, e.g. `"connect /tmp/x/blip.sock: errno 2"`.
    public init(description: String) {
        self.description = description
    }
}
