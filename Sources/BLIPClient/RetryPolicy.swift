#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// When and how a ``CaptionClient`` tries a call again.
///
/// Retried: the daemon's `RESOURCE_EXHAUSTED` (its caption queue or connection limit is full) and
/// `UNAVAILABLE` (it is draining for a restart), and a connection lost before the reply (the
/// daemon restarted under the call; systemd's socket stays open, so the next attempt reaches the
/// new daemon). Not retried: a missing socket (``CaptionClientError/noDaemon(path:)``: nothing
/// listens, and waiting would only delay the error), permission problems, deadlines, and every
/// other status, which the same request would get again.
///
/// Attempt *n* (counting from 1) waits a random time in `0...min(maxBackoff, initialBackoff ×
/// multiplier^(n-1))` before the next ("full jitter", so that many clients turned away together do
/// not come back together), and no attempt starts after the call's deadline: the timeout passed
/// to a call bounds all its attempts and waits.
public struct RetryPolicy: Sendable, Hashable {
    /// Attempts in all, the first included; 1 means no retry.
    public var maxAttempts: Int
    /// The longest wait before the second attempt.
    public var initialBackoff: Duration
    /// The longest wait before any attempt.
    public var maxBackoff: Duration
    /// How much the longest wait grows per attempt.
    public var multiplier: Double
    /// The status codes retried (transport failures are reported as ``CaptionClientError/code``).
    public var retryableCodes: Set<StatusCode>

    /// - Parameters:
    ///   - maxAttempts: Attempts in all (at least 1).
    ///   - initialBackoff: The longest wait before the second attempt.
    ///   - maxBackoff: The longest wait before any attempt.
    ///   - multiplier: Growth of the longest wait per attempt (at least 1).
    ///   - retryableCodes: The codes retried.
    public init(maxAttempts: Int, initialBackoff: Duration = .milliseconds(100), maxBackoff: Duration = .seconds(5),
                multiplier: Double = 2, retryableCodes: Set<StatusCode> = [.resourceExhausted, .unavailable]) {
        self.maxAttempts = max(1, maxAttempts)
        self.initialBackoff = max(.zero, initialBackoff)
        self.maxBackoff = max(self.initialBackoff, maxBackoff)
        self.multiplier = max(1, multiplier)
        self.retryableCodes = retryableCodes
    }

    /// One attempt, no retry: ``CaptionClient``'s default.
    public static let none = RetryPolicy(maxAttempts: 1)

    /// Whether `error`, from attempt number `attempt` (from 1), may be retried.
    public func shouldRetry(_ error: CaptionClientError, attempt: Int) -> Bool {
        guard attempt < maxAttempts else { return false }
        switch error {
        case .rpc(let status): return retryableCodes.contains(status.code)
        case .connectionLost: return retryableCodes.contains(.unavailable)
        case .noDaemon, .permissionDenied, .deadlineExceeded, .protocolViolation: return false
        }
    }

    /// The longest wait after attempt number `attempt` (from 1): `initialBackoff ×
    /// multiplier^(attempt-1)`, at most `maxBackoff`.
    public func backoffCeiling(after attempt: Int) -> Duration {
        let factor = pow(multiplier, Double(max(0, attempt - 1)))
        let seconds = min(Self.seconds(maxBackoff), Self.seconds(initialBackoff) * factor)
        return .nanoseconds(Int64((seconds * 1e9).rounded()))
    }

    /// The wait after attempt number `attempt`: uniformly random up to ``backoffCeiling(after:)``.
    public func backoff(after attempt: Int, using generator: inout some RandomNumberGenerator) -> Duration {
        let ceiling = backoffCeiling(after: attempt)
        guard ceiling > .zero else { return .zero }
        let nanoseconds = Int64(Self.seconds(ceiling) * 1e9)
        return .nanoseconds(Int64.random(in: 0...nanoseconds, using: &generator))
    }

    private static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }
}
