import Glibc

/// One line per event to stderr, where journald picks it up (and adds time, unit and pid).
struct StandardErrorLog: Sendable {
    func callAsFunction(_ line: String) {
        // One write per line, so lines from different threads never interleave.
        let text = "blip-captiond: " + line.map { $0.isNewline ? " " : $0 } + "\n"
        var bytes = Array(text.utf8)
        _ = bytes.withUnsafeMutableBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }
}
