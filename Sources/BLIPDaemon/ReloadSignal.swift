import Dispatch
import Glibc
import BLIPProtocol

/// Turns SIGHUP into a model reload. SIGHUP is ignored until ``attach(_:)`` (its default action
/// would kill the daemon while it loads); reloads run one at a time on their own queue, and
/// SIGHUPs that arrive during one are folded into a single next reload.
/// `@unchecked`: `source` is written once in `init` and only kept alive afterwards.
final class ReloadSignal: @unchecked Sendable {
    private let action = LockedState<(@Sendable () -> Void)?>(nil)
    private let source: any DispatchSourceSignal

    init() {
        signal(SIGHUP, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: DispatchQueue(label: "reload"))
        source.setEventHandler { [weak self] in self?.action.withLock { $0 }?() }
        source.resume()
    }

    /// From now on SIGHUP runs `reload` (on the reload queue, never twice at once).
    func attach(_ reload: @escaping @Sendable () -> Void) {
        action.withLock { $0 = reload }
    }
}
