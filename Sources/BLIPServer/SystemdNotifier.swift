import CSystemd

/// Sends sd_notify(3) state strings (`READY=1`, `STATUS=…`, `WATCHDOG=1`, `STOPPING=1`).
///
/// ``systemd`` writes to `$NOTIFY_SOCKET` and does nothing when it is unset, so the daemon runs
/// the same by hand and under systemd. Tests pass their own closure.
public struct SystemdNotifier: Sendable {
    private let send: @Sendable (String) -> Void

    /// - Parameter send: Receives each state string, e.g. `"READY=1\nSTATUS=serving"`.
    public init(send: @escaping @Sendable (String) -> Void) {
        self.send = send
    }

    /// sd_notify to `$NOTIFY_SOCKET`; silently nothing when it is unset or unreachable (a
    /// notification is advice to the manager, never a reason to fail).
    public static let systemd = SystemdNotifier { state in
        _ = sd_notify(0, state)
    }

    /// Discards everything.
    public static let none = SystemdNotifier { _ in }

    /// Sends `state` (newline-separated assignments).
    public func notify(_ state: String) {
        send(state)
    }

    /// Sends `STATUS=text` (newlines in `text` become spaces: one status is one line).
    public func status(_ text: String) {
        send("STATUS=" + text.replacingNewlines())
    }

    /// The watchdog interval systemd asked for (`WATCHDOG_USEC`, checked against
    /// `WATCHDOG_PID`), or `nil` when the watchdog is off.
    public static func watchdogInterval() -> Duration? {
        var usec: UInt64 = 0
        guard sd_watchdog_enabled(0, &usec) > 0, usec > 0 else { return nil }
        return .microseconds(usec)
    }
}

extension String {
    func replacingNewlines() -> String {
        String(map { $0.isNewline ? " " : $0 })
    }
}
