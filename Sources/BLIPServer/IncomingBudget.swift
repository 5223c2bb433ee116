import BLIPProtocol

/// The bytes of half-received RPC frames and HTTP bodies that all connections together may hold
/// (`ServerConfiguration.maxBufferedBytes`): without it, many clients each leaving a large request
/// half-sent would add up to gigabytes. A connection whose next read would pass the budget is
/// refused (RPC: `RESOURCE_EXHAUSTED`, call id 0; HTTP: 503) and closed.
final class IncomingBudget: Sendable {
    let limit: Int
    private let used = LockedState(0)

    init(limit: Int) { self.limit = max(0, limit) }

    /// Takes `bytes` more out of the budget; `false` (nothing taken) when that would pass the limit.
    func reserve(_ bytes: Int) -> Bool {
        used.withLock { used in
            guard used + bytes <= limit else { return false }
            used += bytes
            return true
        }
    }

    /// Gives `bytes` back.
    func release(_ bytes: Int) {
        used.withLock { $0 = max(0, $0 - bytes) }
    }

    /// Bytes held now.
    var held: Int { used.withLock { $0 } }
}
