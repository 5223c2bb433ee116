import BLIPTestSupport
import Foundation
import Glibc
import Testing

/// `blip-caption caption` over a dataset: caption files beside the images, the metadata index,
/// resuming, the ways an existing caption is kept, and shards. Against `blip-captiond-fake`, whose
/// caption of an image is "<prompt or 'a picture'> of <its byte count> bytes", 5 ms a token.
extension CLITests {
    static let fakeBuilt = FileManager.default.isExecutableFile(atPath: binary.path)
        && FileManager.default.isExecutableFile(atPath: PackagePaths.fakeDaemon)

    /// A tree of `count` images in nested folders (three fixtures of different sizes, so captions differ).
    static func imageTree(_ count: Int) throws -> TemporaryDirectory {
        let tree = TemporaryDirectory(prefix: "blip-dataset")
        let sources = ["rocket.png", "pixel_1x1.png", "gray_moon.png"].map { Fixtures.root.appendingPathComponent("images/" + $0).path }
        for i in 0..<count {
            let folder = tree.path + "/set\(i % 3)/part\(i % 2)"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: sources[i % 3], toPath: folder + "/img\(i).png")
        }
        return tree
    }

    static func fakeDaemon() throws -> DaemonProcess {
        let directory = TemporaryDirectory()
        return try DaemonProcess(executable: PackagePaths.fakeDaemon, rawArguments: ["--socket", directory.path + "/blip.sock"], in: directory)
    }

    /// Every file under `root` with its contents, paths relative to `root`.
    static func files(_ root: String) throws -> [String: String] {
        var files: [String: String] = [:]
        let enumerator = FileManager.default.enumerator(atPath: root)
        while let path = enumerator?.nextObject() as? String {
            var isDirectory: ObjCBool = false
            FileManager.default.fileExists(atPath: root + "/" + path, isDirectory: &isDirectory)
            if !isDirectory.boolValue, !path.hasSuffix(".png") {
                files[path] = String(decoding: FileManager.default.contents(atPath: root + "/" + path) ?? Data(), as: UTF8.self)
            }
        }
        return files
    }

    /// Successful calls the daemon has answered (the `OK` count of its Info counters).
    func answered(_ daemon: DaemonProcess) throws -> Int {
        let r = try run(["info", "--json", "--socket", daemon.socketPath])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        return ((object["counters"] as? [String: Any])?["requests_by_status"] as? [String: Any])?["OK"] as? Int ?? 0
    }

    /// 30 images with `--sidecar .txt --metadata meta.jsonl`: 30 caption files equal to the `--json`
    /// captions and 30 records; a second run skips them all and sends nothing.
    @Test(.enabled(if: fakeBuilt, "build blip-caption and blip-captiond-fake first (swift build --build-tests)"))
    func captionFilesAndMetadataMatchTheCaptions() throws {
        let daemon = try Self.fakeDaemon()
        let tree = try Self.imageTree(30)
        let first = try run(["caption", "--socket", daemon.socketPath, "--json", "--sidecar", ".txt", "--metadata", tree.path + "/meta.jsonl", tree.path])
        #expect(first.status == 0, "\(first.stderr)")
        let lines = first.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(lines.count == 30)
        for line in lines {
            let image = try #require(line["image"] as? String)
            let text = try #require((line["candidates"] as? [[String: Any]])?.first?["text"] as? String)
            let file = String(image.dropLast(4)) + ".txt"
            #expect(String(decoding: FileManager.default.contents(atPath: file) ?? Data(), as: UTF8.self) == text + "\n", "\(file)")
        }
        let records = try String(contentsOfFile: tree.path + "/meta.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(records.count == 30)
        let record = try #require(try JSONSerialization.jsonObject(with: Data(records[0].utf8)) as? [String: String])
        #expect(Set(record.keys) == ["file_name", "text"])
        #expect(record["file_name"]?.hasPrefix("set0/part0/") == true, "relative to the index's folder: \(record)")
        #expect(first.stderr.contains("captioned 30, skipped 0 (already captioned), failed 0"), "\(first.stderr)")

        let before = try answered(daemon)
        let again = try run(["caption", "--socket", daemon.socketPath, "--sidecar", ".txt", "--metadata", tree.path + "/meta.jsonl", tree.path])
        #expect(again.status == 0 && again.stdout.isEmpty, "\(again.stderr)")
        #expect(again.stderr.contains("captioned 0, skipped 30 (already captioned), failed 0"), "\(again.stderr)")
        #expect(try answered(daemon) == before + 2, "only the re-run's Info call and this count's own: no caption sent")
        #expect(try String(contentsOfFile: tree.path + "/meta.jsonl", encoding: .utf8).split(separator: "\n").count == 30, "no duplicate record")
    }

    /// A run stopped by SIGTERM mid-way, then re-run: the same files and records as an uninterrupted
    /// run, no image captioned twice, no temporary file left.
    @Test(.enabled(if: fakeBuilt, "build blip-caption and blip-captiond-fake first (swift build --build-tests)"))
    func anInterruptedRunResumesToTheSameFiles() throws {
        let daemon = try Self.fakeDaemon()
        let whole = try Self.imageTree(30), resumed = try Self.imageTree(30)
        func arguments(_ tree: TemporaryDirectory) -> [String] {
            ["caption", "--socket", daemon.socketPath, "--concurrency", "2", "--max-new-tokens", "20",
             "--sidecar", ".txt", "--metadata", tree.path + "/meta.jsonl", tree.path]
        }
        #expect(try run(arguments(whole)).status == 0)
        let start = try answered(daemon)

        let process = Process()
        process.executableURL = Self.binary
        process.arguments = arguments(resumed)
        process.standardOutput = FileHandle.nullDevice
        let err = Pipe()
        process.standardError = err
        try process.run()
        let deadline = Date(timeIntervalSinceNow: 20)
        while Date() < deadline, (try Self.files(resumed.path).keys.filter { $0.hasSuffix(".txt") }.count) < 8 { usleep(5_000) }
        kill(process.processIdentifier, SIGTERM)
        let said = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 143, "\(said)")
        let partial = try Self.files(resumed.path).keys.filter { $0.hasSuffix(".txt") }.count
        #expect(partial >= 8 && partial < 30, "stopped mid-way: \(partial) captioned\n\(said)")
        #expect(said.contains("(terminated)"), "\(said)")

        let rerun = try run(arguments(resumed))
        #expect(rerun.status == 0, "\(rerun.stderr)")
        #expect(rerun.stderr.contains("captioned \(30 - partial), skipped \(partial) (already captioned)"), "\(rerun.stderr)")
        #expect(try Self.files(resumed.path) == Self.files(whole.path), "the same caption files and index")
        #expect(try answered(daemon) == start + 30 + 2 + 1, "30 captions, 2 Info calls, 1 count: no image twice")
        #expect(try !Self.files(resumed.path).keys.contains { $0.contains(".tmp") }, "no temporary file left")
    }

    /// `--existing`, `--join`, `--strip-prompt`, `--prefix`/`--suffix`, several prompts, and CSV quoting.
    @Test(.enabled(if: fakeBuilt, "build blip-caption and blip-captiond-fake first (swift build --build-tests)"))
    func existingCaptionsPromptsAndCSV() throws {
        let daemon = try Self.fakeDaemon()
        let tree = try Self.imageTree(1)
        let image = tree.path + "/set0/part0/img0.png", captionFile = tree.path + "/set0/part0/img0.caption"
        let bytes = try #require(FileManager.default.attributesOfItem(atPath: image)[.size] as? Int)
        func text() -> String { String(decoding: FileManager.default.contents(atPath: captionFile) ?? Data(), as: UTF8.self) }
        func caption(_ extra: [String]) throws {
            let r = try run(["caption", "--socket", daemon.socketPath, "--sidecar", ".caption"] + extra + [image])
            #expect(r.status == 0, "\(r.stderr)")
        }
        try caption(["--prompt", "a photo of", "--strip-prompt", "--prefix", "sks dog, ", "--suffix", "."])
        #expect(text() == "sks dog, of \(bytes) bytes.\n")
        try caption(["--prompt", "a photo of"])
        #expect(text() == "sks dog, of \(bytes) bytes.\n", "skip is the default")
        try caption(["--existing", "append", "--join", " | "])
        #expect(text() == "sks dog, of \(bytes) bytes. | a picture of \(bytes) bytes\n")
        try caption(["--existing", "prepend", "--prompt", "x"])
        #expect(text() == "x of \(bytes) bytes, sks dog, of \(bytes) bytes. | a picture of \(bytes) bytes\n")
        try caption(["--existing", "overwrite", "--prompt", "", "--prompt", #"say "hi", then"#, "--metadata", tree.path + "/index.csv"])
        #expect(text() == "a picture of \(bytes) bytes\nsay \"hi\", then of \(bytes) bytes\n", "one line per prompt, in prompt order")
        let csv = try String(contentsOfFile: tree.path + "/index.csv", encoding: .utf8)
        #expect(csv == "file_name,text\r\nset0/part0/img0.png,a picture of \(bytes) bytes\r\nset0/part0/img0.png,\"say \"\"hi\"\", then of \(bytes) bytes\"\r\n", "\(csv)")
    }

    /// `--shard 0/3`, `1/3`, `2/3` caption every image exactly once, and together equal an unsharded run.
    @Test(.enabled(if: fakeBuilt, "build blip-caption and blip-captiond-fake first (swift build --build-tests)"))
    func shardsSplitTheTreeOnce() throws {
        let daemon = try Self.fakeDaemon()
        let sharded = try Self.imageTree(30), whole = try Self.imageTree(30)
        var counts: [Int] = []
        for index in 0..<3 {
            let r = try run(["caption", "--socket", daemon.socketPath, "--sidecar", ".txt", "--shard", "\(index)/3",
                             "--metadata", sharded.path + "/meta-{shard}.jsonl", sharded.path])
            #expect(r.status == 0, "\(r.stderr)")
            counts.append(try String(contentsOfFile: sharded.path + "/meta-\(index).jsonl", encoding: .utf8).split(separator: "\n").count)
        }
        #expect(counts.reduce(0, +) == 30 && counts.allSatisfy { $0 > 0 }, "\(counts)")
        #expect(try run(["caption", "--socket", daemon.socketPath, "--sidecar", ".txt", whole.path]).status == 0)
        func captions(_ tree: TemporaryDirectory) throws -> [String: String] { try Self.files(tree.path).filter { $0.key.hasSuffix(".txt") } }
        #expect(try captions(sharded) == captions(whole))
        let auto = try run(["caption", "--socket", daemon.socketPath, "--shard", "auto/3", whole.path])
        #expect(auto.status == 64 && auto.stderr.contains("JOB_COMPLETION_INDEX"), "\(auto.stderr)")
    }
}
