import ArgumentParser
import Foundation

/// One image to caption: a file or standard input.
struct ImageInput: Sendable {
    let name: String
    let path: String?  // nil = standard input

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

    /// Files stay in the order given; directories expand to their JPEG/PNG files, sorted, recursively.
    /// A path that does not exist stays in the list, so it is reported as that image's failure.
    static func expand(_ arguments: [String]) throws -> [ImageInput] {
        var result: [ImageInput] = []
        let fm = FileManager.default
        for argument in arguments {
            if argument == "-" { result.append(ImageInput(name: "-", path: nil)); continue }
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: argument, isDirectory: &isDirectory), isDirectory.boolValue else {
                result.append(ImageInput(name: argument, path: argument))
                continue
            }
            let base = URL(fileURLWithPath: argument)
            var files: [String] = []
            if let walker = fm.enumerator(at: base, includingPropertiesForKeys: [.isRegularFileKey]) {
                for case let url as URL in walker where extensions.contains(url.pathExtension.lowercased()) {
                    files.append(url.path)
                }
            }
            if files.isEmpty { throw ValidationError("\(argument) holds no .jpg, .jpeg or .png files") }
            for file in files.sorted() {
                let shown = argument.hasSuffix("/") ? argument + file.dropFirst(base.path.count + 1) : argument + "/" + file.dropFirst(base.path.count + 1)
                result.append(ImageInput(name: shown, path: file))
            }
        }
        return result
    }
}
