import Foundation

/// A one-line progress bar on stderr (count, rate, ETA), shown only when stderr is a terminal and
/// there is more than one image. It is drawn as soon as the run starts (0 of N), and the line is
/// cleared before anything else is written, so captions printed to the same terminal never share
/// its line: ``printing(_:)`` clears it, lets the caller write, and draws it again below.
final class Progress {
    private let total: Int
    private let enabled: Bool
    private let start = ContinuousClock.now
    private var done = 0
    /// ANSI: carriage return, then erase to the end of the line.
    static let clearLine = "\r\u{1B}[K"

    init(total: Int, terminal: Bool = isatty(STDERR_FILENO) == 1) {
        self.total = total
        enabled = total > 1 && terminal
        draw()
    }

    /// Runs `body` (which writes output) with the bar out of the way, then counts one image done.
    func printing(_ body: () -> Void) {
        if enabled { write(Self.clearLine) }
        body()
        done += 1
        draw()
    }

    private func draw() {
        guard enabled else { return }
        let elapsed = (ContinuousClock.now - start).seconds
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let eta = rate > 0 ? String(format: "ETA %.0fs", Double(total - done) / rate) : "ETA -"
        let width = 30, filled = width * done / max(total, 1)
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        write(Self.clearLine + String(format: "[%@] %d/%d  %.2f img/s  %@", bar, done, total, rate, eta))
        if done == total { write("\n") }
    }

    private func write(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }
}
