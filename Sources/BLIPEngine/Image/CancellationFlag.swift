import Foundation

/// A one-way switch that one thread sets and another polls: how a cancel reaches work that is
/// already running (an image decode on the engine loop's thread) without waiting for it to end.
///
/// Lives beside the image code because that is where it is polled (``ImageStopCheck``); the
/// engine loop owns one per job and sets it from the canceller's thread.
public final class CancellationFlag: @unchecked Sendable {
    // @unchecked: `set` is guarded by `lock`. A lock rather than an atomic: it is polled once per
    // few thousand image rows, so its cost does not show, and `Synchronization` needs macOS 15.
    private let lock = NSLock()
    private var set = false

    public init() {}

    /// Sets the flag; every later ``isSet`` is true. Setting it again changes nothing.
    public func raise() {
        lock.withLock { set = true }
    }

    /// Whether ``raise()`` has been called.
    public var isSet: Bool {
        lock.withLock { set }
    }
}
