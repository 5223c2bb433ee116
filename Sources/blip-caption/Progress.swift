import Foundation

/// A one-line progress bar on stderr (count, rate, ETA), shown only when stderr is a terminal and
/// there is more than one image.
final class Progress {
    private let total: Int
    private let enabled: Bool
    private let start = ContinuousClock.now
    private var done = 0

    init(total: Int) {
        self.total = total
        enabled = total > 1 && isatty(STDERR_FILENO) == 1
    }

    func advance() {
        done += 1
        guard enabled else { return }
        let elapsed = (ContinuousClock.now - start).seconds
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let eta = rate > 0 ? Double(total - done) / rate : 0
        let width = 30, filled = width * done / max(total, 1)
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let line = String(format: "\r[%@] %d/%d  %.2f img/s  ETA %.0fs ", bar, done, total, rate, eta)
        FileHandle.standardError.write(Data(line.utf8))
        if done == total { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
