import ArgumentParser
import BLIPEngine
import Foundation

/// One image to caption: a file or standard input.
struct ImageInput: Sendable {
    let name: String
    let path: String?  // nil = standard input
    /// The path relative to the directory argument it was found under (the path as given for a
    /// file argument): what `--shard` hashes, so a split does not depend on where the tree is mounted.
    var relativePath: String = ""

    func read() throws -> [UInt8] {
        guard let path else { return [UInt8](FileHandle.standardInput.readDataToEndOfFile()) }
        guard let data = FileManager.default.contents(atPath: path) else {
            let reason = access(path, R_OK) == 0 ? "not a readable file" : String(cString: strerror(errno))
            throw InputError("cannot read \(path): \(reason)")
        }
        return [UInt8](data)
    }
}

struct InputError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

enum ImageInputs {
    /// The file-name extensions a directory walk takes: those of every format the engine reads.
    static let extensions: Set<String> = ImageFormat.fileExtensions

    /// The images to caption, and what the directory walk left out.
    struct Expansion {
        var inputs: [ImageInput] = []
        /// Files found in directories whose extension is not an image format's, by extension ("" for none).
        var skippedByExtension: [String: Int] = [:]
        /// Hidden files and folders (names starting with `.`) found in directories.
        var skippedHidden = 0

        /// One line for the end of the run, or `nil` when nothing was skipped.
        var skippedSummary: String? {
            let other = skippedByExtension.values.reduce(0, +)
            guard other + skippedHidden > 0 else { return nil }
            var reasons: [String] = []
            if other > 0 {
                let kinds = skippedByExtension.sorted { ($1.value, $0.key) < ($0.value, $1.key) }.prefix(5)
                    .map { "\($0.key.isEmpty ? "no extension" : "." + $0.key) \($0.value)" }
                let more = skippedByExtension.count > 5 ? ", …" : ""
                reasons.append("\(other) not an image by extension (\(kinds.joined(separator: ", "))\(more))")
            }
            if skippedHidden > 0 { reasons.append("\(skippedHidden) hidden (name starting with '.')") }
            return "skipped \(other + skippedHidden) file\(other + skippedHidden == 1 ? "" : "s") in the directories given: "
                + reasons.joined(separator: "; ") + "; images are read by extension: " + listedExtensions
        }
    }

    /// ".avif, .bmp, …" for messages.
    static var listedExtensions: String { extensions.sorted().map { "." + $0 }.joined(separator: ", ") }

    /// Files stay in the order given; directories expand to their image files (by extension:
    /// ``extensions``), sorted, recursively. Symbolic links are followed, to files and to directories,
    /// but every real directory is walked once (a link back up the tree is not a loop), and names
    /// starting with `.` (hidden files and folders, `.git`, `.thumbnails`) are skipped; what is skipped
    /// is counted for the run's last line. A path that does not exist stays in the list, so it is
    /// reported as that image's failure.
    /// - Throws: `ValidationError` for a directory that holds no images (a usage error, exit 64).
    static func expand(_ arguments: [String]) throws -> Expansion {
        var result = Expansion()
        var walked = Set<DirectoryIdentity>()
        for argument in arguments {
            if argument == "-" { result.inputs.append(ImageInput(name: "-", path: nil, relativePath: "-")); continue }
            guard let identity = DirectoryIdentity(path: argument) else {
                result.inputs.append(ImageInput(name: argument, path: argument, relativePath: argument))
                continue
            }
            let prefix = argument.hasSuffix("/") ? argument : argument + "/"
            var files: [String] = []
            walk(prefix, identity, into: &files, skipped: &result, walked: &walked)
            if files.isEmpty { throw ValidationError("\(argument) holds no image files (\(listedExtensions); hidden ones are skipped)") }
            result.inputs += files.map { ImageInput(name: $0, path: $0, relativePath: String($0.dropFirst(prefix.count))) }
        }
        return result
    }

    /// Appends the images under `directory` (a path ending in `/`) in sorted order.
    private static func walk(_ directory: String, _ identity: DirectoryIdentity, into files: inout [String],
                             skipped: inout Expansion, walked: inout Set<DirectoryIdentity>) {
        guard walked.insert(identity).inserted else { return }
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for name in names.sorted() {
            if name.hasPrefix(".") { skipped.skippedHidden += 1; continue }
            let path = directory + name
            if let child = DirectoryIdentity(path: path) {
                walk(path + "/", child, into: &files, skipped: &skipped, walked: &walked)
            } else {
                let ext = (name as NSString).pathExtension.lowercased()
                if extensions.contains(ext) { files.append(path) } else { skipped.skippedByExtension[ext, default: 0] += 1 }
            }
        }
    }
}

/// A directory as the file system knows it (device and inode, links followed), so that a folder
/// reached twice through symbolic links is walked once.
struct DirectoryIdentity: Hashable {
    let device: UInt64
    let inode: UInt64

    /// `nil` when `path` is not a directory (or a link to one).
    init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else { return nil }
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
    }
}
