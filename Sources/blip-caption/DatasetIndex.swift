import Foundation

/// `--metadata FILE`: the dataset's index, one record per image and prompt — FILE.jsonl as Hugging
/// Face `imagefolder` metadata (`{"file_name": …, "text": …}`), FILE.csv with the header
/// `file_name,text` (RFC 4180 quoting). `file_name` is relative to the index's folder.
///
/// A run first rewrites the file (atomically) keeping the records of every image it will not
/// caption again, then appends each captioned image's records as it goes, written through at once:
/// re-running a command never duplicates a record, and an image's records are either all there or,
/// if the run was killed before the image was finished, absent (and it is captioned again).
final class DatasetIndex {
    struct Record: Equatable {
        var fileName: String
        var text: String
    }

    let path: String
    let folder: String
    private let csv: Bool
    private var handle: FileHandle?

    init(path: String) {
        self.path = path
        folder = (((path as NSString).deletingLastPathComponent) as NSString).standardizingPath
        csv = (path as NSString).pathExtension.lowercased() == "csv"
    }

    /// `imagePath` relative to the index's folder (absolute when it is outside it).
    func fileName(of imagePath: String) -> String {
        let absolute = Self.absolute(imagePath), base = Self.absolute(folder.isEmpty ? "." : folder)
        let prefix = base.hasSuffix("/") ? base : base + "/"
        return absolute.hasPrefix(prefix) ? String(absolute.dropFirst(prefix.count)) : absolute
    }

    static func absolute(_ path: String) -> String {
        let full = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        return (full as NSString).standardizingPath
    }

    /// The records the file holds now (none when it does not exist).
    func existingRecords() throws -> [Record] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        let text = String(decoding: data, as: UTF8.self)
        return csv ? CSV.records(text) : text.split(separator: "\n").compactMap { line in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let name = object["file_name"] as? String, let text = object["text"] as? String else { return nil }
            return Record(fileName: name, text: text)
        }
    }

    /// Rewrites the file with `kept` (whole or not at all), then opens it for ``append(_:)``.
    func start(keeping kept: [Record]) throws {
        var text = csv ? "file_name,text\r\n" : ""
        for record in kept { text += line(record) }
        try AtomicFile.write(Data(text.utf8), to: path)
        guard let handle = FileHandle(forWritingAtPath: path) else { throw InputError("cannot write \(path)") }
        try handle.seekToEnd()
        self.handle = handle
    }

    /// Appends one image's records in one write, straight to the file.
    func append(_ records: [Record]) throws {
        try handle?.write(contentsOf: Data(records.map(line).joined().utf8))
    }

    private func line(_ record: Record) -> String {
        if csv { return CSV.field(record.fileName) + "," + CSV.field(record.text) + "\r\n" }
        let object: [String: String] = ["file_name": record.fileName, "text": record.text]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    /// RFC 4180: fields with a comma, quote or line break are quoted, quotes doubled.
    enum CSV {
        static func field(_ text: String) -> String {
            guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
            return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }

        /// The records of a file this class wrote (header first).
        static func records(_ text: String) -> [Record] {
            var rows: [[String]] = [], row: [String] = [], field = ""
            var quoted = false, index = text.startIndex
            while index < text.endIndex {
                let c = text[index]
                index = text.index(after: index)
                if quoted {
                    if c == "\"" {
                        if index < text.endIndex, text[index] == "\"" { field.append("\""); index = text.index(after: index) } else { quoted = false }
                    } else { field.append(c) }
                } else if c == "\"" {
                    quoted = true
                } else if c == "," {
                    row.append(field); field = ""
                } else if c == "\r\n" || c == "\n" {
                    row.append(field); field = ""
                    rows.append(row); row = []
                } else if c != "\r" {
                    field.append(c)
                }
            }
            if !field.isEmpty || !row.isEmpty { row.append(field); rows.append(row) }
            return rows.dropFirst().compactMap { $0.count == 2 ? Record(fileName: $0[0], text: $0[1]) : nil }
        }
    }
}
