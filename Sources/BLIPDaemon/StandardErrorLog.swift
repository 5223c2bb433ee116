import BLIPProtocol
import Glibc

/// One line per event to stderr, where journald picks it up (and adds time, unit and pid).
///
/// When stderr is the journal (systemd sets `JOURNAL_STREAM` to its `DEV:INODE`,
/// systemd.exec(5)), each line starts with its sd-daemon(3) priority (`<3>`, `<4>`, `<6>`) so
/// `journalctl -p warning` finds the problems, and without the `blip-captiond: ` prefix, which
/// the journal's own identifier makes redundant. Anywhere else the line is
/// `blip-captiond: TEXT`, as it always was.
struct StandardErrorLog: Sendable {
    /// A line's syslog priority; the raw values are sd-daemon's prefixes.
    enum Level: Int, Sendable {
        /// Start-up failed: the daemon exits.
        case error = 3
        /// Something went wrong that the daemon survives (ignoring it, or keeping the old state).
        case warning = 4
        /// Normal operation.
        case info = 6
    }

    /// Whether stderr is the journal stream `JOURNAL_STREAM` names.
    let toJournal: Bool

    /// Looks at `JOURNAL_STREAM` and stderr once.
    init() {
        toJournal = Self.stderrIsJournal(getenv("JOURNAL_STREAM").map { String(cString: $0) })
    }

    /// Writes `line` (newlines become spaces) as one line.
    /// - Parameters:
    ///   - line: The event.
    ///   - level: Its priority; only the journal sees it.
    func callAsFunction(_ line: String, level: Level = .info) {
        let text = Self.format(line, level: level, toJournal: toJournal)
        // One write per line, so lines from different threads never interleave.
        var bytes = Array(text.utf8)
        _ = bytes.withUnsafeMutableBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }

    /// A line from the server library, which passes text only: its level inferred
    /// (``Level/inferred(from:)``).
    func fromServer(_ line: String) {
        self(line, level: .inferred(from: line))
    }

    /// The bytes of one line: `<N>TEXT\n` for the journal, `blip-captiond: TEXT\n` elsewhere.
    static func format(_ line: String, level: Level, toJournal: Bool) -> String {
        let flat = String(line.map { $0.isNewline ? " " : $0 })
        return (toJournal ? "<\(level.rawValue)>" : "blip-captiond: ") + flat + "\n"
    }

    /// Whether `journalStream` (`DEV:INODE`, decimal) is the device and inode of stderr; a
    /// process whose stderr was redirected after systemd started it still inherits the variable.
    static func stderrIsJournal(_ journalStream: String?) -> Bool {
        guard let journalStream else { return false }
        let parts = journalStream.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return false }
        var status = stat()
        guard fstat(STDERR_FILENO, &status) == 0 else { return false }
        return UInt64(status.st_dev) == device && UInt64(status.st_ino) == inode
    }
}

extension StandardErrorLog.Level {
    /// Words that mark a server line as a problem the daemon survives.
    static let warningWords = [
        "failed", "cannot", "could not", "refus", "ignoring", "stopped reading", "stalled",
        "withholding watchdog", "connection error", "bad envelope", "not in --allow-uid", "not sent",
    ]

    /// Statuses of a call's line (`conn 3 call 17 Caption INTERNAL in 5 ms: …`) that say the
    /// daemon is overloaded, refusing, or at fault; other statuses are the caller's business,
    /// whatever their message says ("cannot decode the image").
    static let warningStatuses: Set<StatusCode> = [.unknown, .internal, .dataLoss, .resourceExhausted, .permissionDenied]

    /// The level of a line that came without one: a call's line by its status, any other line
    /// by ``warningWords``; info when nothing matches.
    static func inferred(from line: String) -> Self {
        let words = line.split(separator: " ", maxSplits: 6)
        if words.count >= 6, words[0] == "conn", words[2] == "call", !words[3].hasSuffix(":") {
            // conn ID call ID METHOD STATUS…: the status as StatusCode.name spells it.
            let name = words[5].hasSuffix(":") ? words[5].dropLast() : words[5]
            if let status = StatusCode.allCases.first(where: { $0.name == name }) {
                return warningStatuses.contains(status) ? .warning : .info
            }
        }
        let lowered = line.lowercased()
        return warningWords.contains { lowered.contains($0) } ? .warning : .info
    }
}
