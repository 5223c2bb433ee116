import Foundation

/// A one-line progress bar on stderr (count, rate, ETA), shown only when stderr is a terminal and
/// there is more than one image. It fits the terminal's width (a narrow one gets counts only, never
/// a wrapped line), is cleared before anything else is written — captions and warnings never share
/// its line: ``printing(_:)`` clears it, lets the caller write, and draws it again below — and
/// ``finish()`` clears it for the summary line.
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

    /// Seconds since the run started.
    var elapsed: Double { (ContinuousClock.now - start).seconds }

    /// Runs `body` (which writes output) with the bar out of the way, then counts one image done.
    func printing(_ body: () -> Void) {
        if enabled { write(Self.clearLine) }
        body()
        done += 1
        draw()
    }

    /// Clears the bar for good.
    func finish() {
        if enabled { write(Self.clearLine) }
    }

    /// The bar's line for `columns` columns: bar, counts, rate and ETA where they fit, fewer parts
    /// where they do not, never more than `columns - 1` characters.
    static func line(done: Int, total: Int, elapsed: Double, columns: Int) -> String {
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let eta = rate > 0 ? String(format: "ETA %.0fs", Double(total - done) / rate) : "ETA -"
        let counts = "\(done)/\(total)"
        let details = String(format: "%@  %.2f img/s  %@", counts, rate, eta)
        let room = columns - 1
        let barWidth = min(30, room - details.count - 3)
        if barWidth >= 5 {
            let filled = barWidth * done / max(total, 1)
            return "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: barWidth - filled) + "] " + details
        }
        if details.count <= room { return details }
        return String(counts.prefix(max(0, room)))
    }

    private func draw() {
        guard enabled else { return }
        write(Self.clearLine + Self.line(done: done, total: total, elapsed: elapsed, columns: Self.columns()))
    }

    /// The terminal's width (80 when it does not say).
    static func columns() -> Int {
        var size = winsize()
        guard ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return 80 }
        return Int(size.ws_col)
    }

    private func write(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }
}
