import BLIPProtocol

/// Counters for Info: calls completed by status, and Caption latencies.
final class ServerStatistics: Sendable {
    /// Latencies kept for percentiles: the most recent ones (a fixed ring, so memory stays
    /// bounded however long the daemon runs).
    static let latencyWindow = 10_000

    private struct State {
        var byStatus: [StatusCode: UInt64] = [:]
        var latencies: [UInt64] = []
        var nextSlot = 0
        var captionsOK: UInt64 = 0
    }
    private let state = LockedState(State())
    let started = ContinuousClock.now

    /// Counts one completed call; `latency` is given for Caption calls.
    func record(_ code: StatusCode, latency: Duration?) {
        state.withLock { state in
            state.byStatus[code, default: 0] += 1
            guard let latency else { return }
            if code == .ok { state.captionsOK += 1 }
            let microseconds = latency.microseconds
            if state.latencies.count < Self.latencyWindow {
                state.latencies.append(microseconds)
            } else {
                state.latencies[state.nextSlot] = microseconds
                state.nextSlot = (state.nextSlot + 1) % Self.latencyWindow
            }
        }
    }

    /// Captions answered OK since start (for the status line).
    var captionsServed: UInt64 { state.withLock { $0.captionsOK } }

    /// The counters as Info reports them.
    func counters(queueDepth: Int, now: ContinuousClock.Instant = .now) -> InfoResponse.Counters {
        let (byStatus, latencies) = state.withLock { ($0.byStatus, $0.latencies) }
        let sorted = latencies.sorted()
        return InfoResponse.Counters(
            uptimeMicroseconds: (now - started).microseconds,
            requestsByStatus: byStatus,
            queueDepth: UInt32(clamping: queueDepth),
            latencyP50Microseconds: Self.percentile(0.50, of: sorted),
            latencyP95Microseconds: Self.percentile(0.95, of: sorted),
            latencyP99Microseconds: Self.percentile(0.99, of: sorted)
        )
    }

    /// Nearest-rank percentile of sorted values; 0 when there are none.
    static func percentile(_ p: Double, of sorted: [UInt64]) -> UInt64 {
        guard !sorted.isEmpty else { return 0 }
        let rank = Int((p * Double(sorted.count)).rounded(.up))
        return sorted[min(max(rank, 1), sorted.count) - 1]
    }
}
