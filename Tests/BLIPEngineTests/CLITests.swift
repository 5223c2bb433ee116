import Foundation
import Testing

/// Runs the built `blip-caption` binary (built by `swift build --build-tests`, as scripts/test.sh does).
@Suite("blip-caption CLI")
struct CLITests {
    static let binary = Fixtures.root.deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent(".build/debug/blip-caption")

    struct Run { var status: Int32; var stdout: String; var stderr: String }

    func run(_ arguments: [String], stdin: Data? = nil) throws -> Run {
        let process = Process()
        process.executableURL = Self.binary
        process.arguments = arguments
        let out = Pipe(), err = Pipe(), input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(stdin) }
        try input.fileHandleForWriting.close()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: binary.path), "build blip-caption first (swift build)"))
    func localJSONMatchesTransformersGreedy() throws {
        // The first greedy case of tiny-a's golden file, through the CLI.
        let cases = try JSONDecoder().decode([CaptionReferenceTests.Case].self, from: Data(contentsOf: Fixtures.root.appendingPathComponent("golden/tiny-a/generation.json")))
        let c = try #require(cases.first { $0.name == "greedy_new_tokens" })
        let image = Fixtures.root.appendingPathComponent("images/\(c.image)").path
        let r = try run(["caption", "--local", "--model", Fixtures.modelFolder("tiny-a").url.path, "--json", "--num-beams", "1",
                         "--max-new-tokens", "10", "--min-new-tokens", "3", "--min-length", "0", image, "/nonexistent.jpg"])
        #expect(r.status == 1, "one of two images failed, so the exit status says so: \(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map { Data($0.utf8) }
        try #require(lines.count == 2, "stdout: \(r.stdout)")
        let first = try #require(try JSONSerialization.jsonObject(with: lines[0]) as? [String: Any])
        #expect(first["image"] as? String == image)
        let candidates = try #require(first["candidates"] as? [[String: Any]])
        #expect(candidates.count == 1)
        #expect((candidates[0]["token_ids"] as? [Int])?.map(Int32.init) == c.sequences[0])
        #expect(candidates[0]["text"] as? String == c.texts[0])
        #expect(candidates[0]["score"] is Double)
        let second = try #require(try JSONSerialization.jsonObject(with: lines[1]) as? [String: Any])
        #expect(second["image"] as? String == "/nonexistent.jpg")
        #expect((second["error"] as? String)?.contains("No such file") == true, "\(second)")
        #expect(r.stderr.contains("OpenBLAS kernel"))
    }

    /// tiny-b stores bfloat16 weights, so `--weights bf16` loses nothing there: same tokens and
    /// scores as float32, transformers' answer. A bad value names the choices.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: binary.path), "build blip-caption first (swift build)"))
    func bf16WeightsOnABFloat16CheckpointChangeNothing() throws {
        let image = Fixtures.root.appendingPathComponent("images/rocket.png").path
        let model = Fixtures.modelFolder("tiny-b").url.path
        let fp32 = try run(["caption", "--local", "--model", model, "--json", "--max-new-tokens", "8", image])
        let bf16 = try run(["caption", "--local", "--model", model, "--json", "--max-new-tokens", "8", "--weights", "bf16", image])
        #expect(fp32.status == 0 && bf16.status == 0, "\(fp32.stderr)\n\(bf16.stderr)")
        #expect(bf16.stderr.contains("decoder weights bf16"))
        func candidates(_ r: Run) throws -> [[String: Any]] {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
            return try #require(object["candidates"] as? [[String: Any]])
        }
        let a = try candidates(fp32), b = try candidates(bf16)
        #expect((a[0]["token_ids"] as? [Int]) == (b[0]["token_ids"] as? [Int]))
        #expect((a[0]["score"] as? Double) == (b[0]["score"] as? Double))
        let bad = try run(["caption", "--local", "--model", model, "--weights", "int4", image])
        #expect(bad.status != 0 && bad.stderr.contains("fp32"), "\(bad.stderr)")
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: binary.path), "build blip-caption first (swift build)"))
    func defaultSubcommandReadsStdinAndPrintsText() throws {
        let bytes = try Data(contentsOf: Fixtures.root.appendingPathComponent("images/astronaut_q90_420.jpg"))
        let r = try run(["--local", "--model", Fixtures.modelFolder("tiny-a").url.path, "-"], stdin: bytes)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("-: "))
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: binary.path), "build blip-caption first (swift build)"))
    func outOfRangeParameterIsNamed() throws {
        let image = Fixtures.root.appendingPathComponent("images/astronaut_q90_420.jpg").path
        let r = try run(["--local", "--model", Fixtures.modelFolder("tiny-a").url.path, "--top-p", "1.5", "--do-sample", image])
        #expect(r.status == 1)
        #expect(r.stderr.contains("top_p must be in (0, 1]"), "\(r.stderr)")
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: binary.path), "build blip-caption first (swift build)"))
    func missingModelSaysWhatToDo() throws {
        let r = try run(["--local", "--model", "/nonexistent/model", "x.jpg"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("model not found"), "\(r.stderr)")
    }
}
