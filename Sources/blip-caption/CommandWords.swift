import Foundation

/// The command line as the user may write it, put in the order ArgumentParser reads: the global
/// options (`--socket`, `--timeout`, `--json`) may come before the subcommand
/// (`blip-caption --socket PATH health`), and a first word that is neither a subcommand nor an
/// existing path is a mistyped command, not an image.
enum CommandWords {
    /// Options every subcommand that talks to a daemon takes, with whether they take a value.
    static let globalOptions: [String: Bool] = ["--socket": true, "--timeout": true, "--json": false]

    enum Arranged: Equatable {
        case arguments([String])
        /// A usage error: the message to print (exit 64).
        case unknownCommand(String)
    }

    /// - Parameters:
    ///   - words: the arguments after the executable's name.
    ///   - commands: the subcommands' names.
    ///   - exists: whether a path exists (the file system; a parameter for tests).
    static func arrange(_ words: [String], commands: [String],
                        exists: (String) -> Bool = { FileManager.default.fileExists(atPath: $0) }) -> Arranged {
        var index = 0
        while index < words.count {
            let word = words[index]
            let name = word.split(separator: "=", maxSplits: 1).first.map(String.init) ?? word
            guard let takesValue = globalOptions[name] else { break }
            index += takesValue && !word.contains("=") ? 2 : 1
        }
        guard index < words.count else { return .arguments(words) }
        let first = words[index]
        if commands.contains(first) {
            guard index > 0 else { return .arguments(words) }
            var arranged = words
            arranged.remove(at: index)
            return .arguments([first] + arranged)
        }
        let looksLikeACommand = !first.hasPrefix("-") && !first.contains("/") && !first.contains(".") && !exists(first)
        guard looksLikeACommand else { return .arguments(words) }
        var message = "unknown command '\(first)'"
        if let nearest = commands.min(by: { distance($0, first) < distance($1, first) }), distance(nearest, first) <= 2 {
            message += "; did you mean '\(nearest)'?"
        } else {
            message += "; the commands are \(commands.joined(separator: ", ")), and an image is a path that exists"
        }
        return .unknownCommand(message)
    }

    /// Levenshtein distance between two short words.
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var previous = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...max(b.count, 1) where !b.isEmpty {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
