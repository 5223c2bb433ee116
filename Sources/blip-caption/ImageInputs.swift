import ArgumentParser
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
    static let extensions: Set<String> = ["jpg", "jpeg", "jpe", "png"]

    /// Files stay in the order given; directories expand to their JPEG/PNG files, sorted,
    /// recursively. Symbolic links are followed, to files and to directories, but every real
    /// directory is walked once (a link back up the tree is not a loop), and names starting with
    /// `.` (hidden files and folders, `.git`, `.thumbnails`) are skipped. A path that does not exist
    /// stays in the list, so it is reported as that image's failure.
    /// - Throws: `ValidationError` for a directory that holds no images (a usage error, exit 64).
    static func expand(_ arguments: [String]) throws -> [ImageInput] {
        var result: [ImageInput] = []
        var walked = Set<DirectoryIdentity>()
        for argument in arguments {
            if argument == "-" { result.append(ImageInput(name: "-", path: nil, relativePath: "-")); continue }
            guard let identity = DirectoryIdentity(path: argument) else {
                result.append(ImageInput(name: argument, path: argument, relativePath: argument))
                continue
            }
            let prefix = argument.hasSuffix("/") ? argument : argument + "/"
            var files: [String] = []
            walk(prefix, identity, into: &files, walked: &walked)
            if files.isEmpty { throw ValidationError("\(argument) holds no .jpg, .jpeg or .png files (hidden ones are skipped)") }
            result += files.map { ImageInput(name: $0, path: $0, relativePath: String($0.dropFirst(prefix.count))) }
        }
        return result
    }

    /// Appends the images under `directory` (a path ending in `/`) in sorted order.
    private static func walk(_ directory: String, _ identity: DirectoryIdentity, into files: inout [String], walked: inout Set<DirectoryIdentity>) {
        guard walked.insert(identity).inserted else { return }
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for name in names.sorted() where !name.hasPrefix(".") {
            let path = directory + name
            if let child = DirectoryIdentity(path: path) {
                walk(path + "/", child, into: &files, walked: &walked)
            } else if extensions.contains((name as NSString).pathExtension.lowercased()) {
                files.append(path)
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
