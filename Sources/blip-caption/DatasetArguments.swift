import ArgumentParser
import Foundation

/// Captioning a dataset: caption files beside the images, a dataset index, shards.
struct DatasetArguments: ParsableArguments {
    @Option(help: ArgumentHelp("Write each image's caption to the file beside it named by the image's stem and EXT (photo.jpg + .txt → photo.txt; .caption as kohya's make_captions.py): UTF-8, one line per prompt, written atomically.", valueName: "EXT"))
    var sidecar: String?
    @Option(help: ArgumentHelp("What to do when the caption file exists: skip the image (nothing is sent, so re-running a command resumes it), overwrite it, or append/prepend the new caption with --join.", valueName: "skip|overwrite|append|prepend"))
    var existing: ExistingCaption = .skip
    @Option(help: ArgumentHelp("Text between the existing and the new caption with --existing append or prepend.", valueName: "text"))
    var join = ", "
    @Flag(help: "Remove the conditional prompt (and the space after it) from the start of each written caption, as original BLIP does.")
    var stripPrompt = false
    @Option(help: ArgumentHelp("Text before each written caption, e.g. \"sks dog, \" (a trigger word).", valueName: "text"))
    var prefix = ""
    @Option(help: ArgumentHelp("Text after each written caption.", valueName: "text"))
    var suffix = ""
    @Option(help: ArgumentHelp("Write a dataset index as it goes: FILE.jsonl as Hugging Face imagefolder metadata ({\"file_name\", \"text\"}), FILE.csv with the header file_name,text. Re-runs keep the records of skipped images and replace the others; {shard} becomes the shard's index.", valueName: "FILE"))
    var metadata: String?
    @Option(help: ArgumentHelp("Caption only the images whose path (relative to the argument given) hashes into shard INDEX of COUNT; auto/COUNT takes INDEX from $JOB_COMPLETION_INDEX (a Kubernetes Indexed Job).", valueName: "INDEX/COUNT"))
    var shard: String?

    enum ExistingCaption: String, ExpressibleByArgument, CaseIterable {
        case skip, overwrite, append, prepend
    }

    /// Whether anything is written beside the output (the summary line then follows every run).
    var writesFiles: Bool { sidecar != nil || metadata != nil }

    func validate() throws {
        if let sidecar {
            guard sidecar.hasPrefix("."), sidecar.count > 1, !sidecar.contains("/") else {
                throw ValidationError("--sidecar takes an extension starting with a dot, such as .txt or .caption; got \"\(sidecar)\"")
            }
        }
        if let metadata {
            let ext = (metadata as NSString).pathExtension.lowercased()
            guard ext == "jsonl" || ext == "csv" else {
                throw ValidationError("--metadata names a .jsonl (Hugging Face imagefolder) or .csv file; got \"\(metadata)\"")
            }
        }
        _ = try shardSelection(environment: [:], checkingOnly: true)
    }

    /// The shard this run captions; `nil` without `--shard`.
    /// - Throws: `ValidationError` for a malformed `--shard` or a missing `JOB_COMPLETION_INDEX`.
    func shardSelection(environment: [String: String] = ProcessInfo.processInfo.environment,
                        checkingOnly: Bool = false) throws -> ShardSelection? {
        guard let shard else { return nil }
        let parts = shard.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let count = Int(parts[1]), count >= 1 else {
            throw ValidationError("--shard takes INDEX/COUNT (0/4) or auto/COUNT; got \"\(shard)\"")
        }
        let index: Int
        if parts[0] == "auto" {
            if checkingOnly { return nil }
            guard let text = environment["JOB_COMPLETION_INDEX"], let value = Int(text) else {
                throw ValidationError("--shard auto/\(count) takes the index from $JOB_COMPLETION_INDEX, which is not set (run it in a Kubernetes Indexed Job, or give INDEX/\(count))")
            }
            index = value
        } else {
            guard let value = Int(parts[0]) else { throw ValidationError("--shard takes INDEX/COUNT (0/4) or auto/COUNT; got \"\(shard)\"") }
            index = value
        }
        guard (0..<count).contains(index) else {
            throw ValidationError("--shard \(shard): the index must be in 0...\(count - 1)")
        }
        return ShardSelection(index: index, count: count)
    }

    /// The caption file's text for one image: one line per prompt (in prompt order), each the first
    /// candidate's text, the prompt stripped with `--strip-prompt`, `--prefix` and `--suffix` added.
    func lines(_ captions: [(prompt: String?, text: String)]) -> [String] {
        captions.map { prompt, text in
            var caption = text
            if stripPrompt, let prompt, !prompt.isEmpty, caption.hasPrefix(prompt) {
                caption = String(caption.dropFirst(prompt.count))
                if caption.hasPrefix(" ") { caption.removeFirst() }
            }
            let line = prefix + caption + suffix
            return line.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ")
        }
    }
}

/// One shard of a stable, disjoint split by path: FNV-1a (64-bit) of the path's UTF-8, modulo the count.
struct ShardSelection: Equatable {
    let index: Int
    let count: Int

    func contains(_ relativePath: String) -> Bool {
        Int(Self.hash(relativePath) % UInt64(count)) == index
    }

    static func hash(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        return hash
    }
}
