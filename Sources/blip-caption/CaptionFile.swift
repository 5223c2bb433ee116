import Foundation

/// The caption file beside an image (`photo.jpg` → `photo.txt`), written atomically: a temporary
/// file in the same folder, then a rename, so a run killed at any moment leaves it whole or absent.
struct CaptionFile {
    let path: String

    /// The caption file of `imagePath` with extension `ext` (".txt").
    init(image imagePath: String, extension ext: String) {
        path = ((imagePath as NSString).deletingPathExtension) + ext
    }

    var exists: Bool { FileManager.default.fileExists(atPath: path) }

    /// The file's lines (without their newlines); `nil` when it does not exist or cannot be read.
    func lines() -> [String]? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        var text = String(decoding: data, as: UTF8.self)
        while text.hasSuffix("\n") { text.removeLast() }
        return text.isEmpty ? [] : text.components(separatedBy: "\n")
    }

    /// The lines to write given what the file holds: `new` alone (overwrite, or no file), or each
    /// existing line joined to the new line of the same prompt (append: old + join + new; prepend:
    /// new + join + old).
    func merged(_ new: [String], mode: DatasetArguments.ExistingCaption, join: String) -> [String] {
        guard mode == .append || mode == .prepend, let old = lines(), !old.isEmpty else { return new }
        return (0..<max(old.count, new.count)).map { i in
            let o = i < old.count ? old[i] : nil, n = i < new.count ? new[i] : nil
            switch (o, n) {
            case let (o?, n?): return mode == .append ? o + join + n : n + join + o
            case let (o?, nil): return o
            case let (nil, n?): return n
            case (nil, nil): return ""
            }
        }
    }

    /// Writes `lines` (each newline-terminated) through a temporary file and a rename.
    /// - Throws: `InputError` naming the file and the reason.
    func write(_ lines: [String]) throws {
        let data = Data(lines.map { $0 + "\n" }.joined().utf8)
        try AtomicFile.write(data, to: path)
    }
}

/// Whole-or-absent files: written to a temporary name in the target's folder, synced, renamed.
enum AtomicFile {
    /// `.NAME.tmp` beside `path`: hidden (the directory walk skips it) and the same on every run,
    /// so a run killed before its rename leaves one that the next run's write replaces
    /// (``removeLeftover(of:)`` removes it where nothing is written).
    static func temporaryPath(of path: String) -> String {
        let folder = (path as NSString).deletingLastPathComponent
        return (folder.isEmpty ? "." : folder) + "/." + (path as NSString).lastPathComponent + ".tmp"
    }

    static func removeLeftover(of path: String) { unlink(temporaryPath(of: path)) }

    static func write(_ data: Data, to path: String) throws {
        let temporary = temporaryPath(of: path)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw InputError("cannot write \(path): \(String(cString: strerror(errno)))") }
        let written = data.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == data.count, synced, rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw InputError("cannot write \(path): \(reason)")
        }
    }
}
