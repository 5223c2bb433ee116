import BLIPEngine
import BLIPTestSupport
import Foundation
import Testing

/// Runs the built `blip-caption` binary (built by `swift build --build-tests`, as scripts/test.sh does).
// Serialized: each test blocks its thread on a child process, and two at once would take both of
// a 2-core machine's cooperative threads, starving the timing-sensitive async tests of other suites.
@Suite("blip-caption CLI", .serialized)
struct CLITests {
    static let binary = URL(fileURLWithPath: PackagePaths.builtProduct("blip-caption"))

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
        #expect(first["prompt"] as? String == "", "no --prompt: the unconditional caption")
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

    /// tiny-b stores bfloat16 weights, so `--weights bf16` (`--precision`'s alias) loses nothing there
    /// where bf16 rounds only the weights (a CPU without AVX-512 BF16 or AMX): same tokens and scores
    /// as float32, transformers' answer. Where the vision encoder's activations are rounded too, the
    /// run must still succeed and say so. A bad value names the choices.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: binary.path), "build blip-caption first (swift build)"))
    func bf16WeightsOnABFloat16CheckpointChangeNothing() throws {
        let image = Fixtures.root.appendingPathComponent("images/rocket.png").path
        let model = Fixtures.modelFolder("tiny-b").url.path
        let fp32 = try run(["caption", "--local", "--model", model, "--json", "--max-new-tokens", "8", image])
        let bf16 = try run(["caption", "--local", "--model", model, "--json", "--max-new-tokens", "8", "--weights", "bf16", image])
        #expect(fp32.status == 0 && bf16.status == 0, "\(fp32.stderr)\n\(bf16.stderr)")
        let plan = PrecisionPlan.make(.bfloat16)
        #expect(bf16.stderr.contains("precision bf16 (\(plan.instructionPath))"), "\(bf16.stderr)")
        guard plan.denseProducts == nil else { return }
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

    /// The JSON lines of a run, each an object.
    func jsonLines(_ r: Run) throws -> [[String: Any]] {
        try r.stdout.split(separator: "\n").map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
    }

    /// Two `--prompt`s make one `prompts` call: a line per prompt, in the order given, each with the
    /// captions that prompt gets alone (one `--prompt`, or none for ""). Beam search with two
    /// returned sequences, so every candidate of every line is compared.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: binary.path), "build blip-caption first (swift build)"))
    func severalPromptsGiveOneLinePerPromptMatchingEachPromptAlone() throws {
        let images = ["astronaut_q90_420.jpg", "rocket.png"].map { Fixtures.root.appendingPathComponent("images/\($0)").path }
        let common = ["caption", "--local", "--model", Fixtures.modelFolder("tiny-a").url.path, "--json",
                      "--num-beams", "3", "--num-return-sequences", "2", "--max-new-tokens", "8"]
        let both = try run(common + ["--prompt", "", "--prompt", "a picture of"] + images)
        let conditional = try run(common + ["--prompt", "a picture of"] + images)
        let unconditional = try run(common + images)
        for r in [both, conditional, unconditional] { #expect(r.status == 0, "\(r.stderr)") }

        let lines = try jsonLines(both), alone = try jsonLines(conditional), none = try jsonLines(unconditional)
        try #require(lines.count == 4 && alone.count == 2 && none.count == 2, "stdout: \(both.stdout)")
        #expect(lines.map { $0["image"] as? String } == [images[0], images[0], images[1], images[1]])
        #expect(lines.map { $0["prompt"] as? String } == ["", "a picture of", "", "a picture of"])
        #expect(alone.map { $0["prompt"] as? String } == ["a picture of", "a picture of"])
        #expect(none.map { $0["prompt"] as? String } == ["", ""])
        for (index, image) in images.enumerated() {
            let pair = [(lines[2 * index], none[index]), (lines[2 * index + 1], alone[index])]
            for (line, single) in pair {
                let candidates = try #require(line["candidates"] as? [[String: Any]])
                let expected = try #require(single["candidates"] as? [[String: Any]])
                #expect(candidates.count == 2)
                #expect(candidates.map { $0["token_ids"] as? [Int] } == expected.map { $0["token_ids"] as? [Int] },
                        "\(image), prompt \(line["prompt"] ?? "-")")
                #expect(NSArray(array: candidates).isEqual(to: expected), "\(image): \(candidates) vs \(expected)")
                for candidate in candidates {
                    // finish_reason is absent while the engine does not report it; when present it
                    // agrees with the tokens: eos exactly when the sequence ends with [SEP].
                    if let reason = candidate["finish_reason"] as? String {
                        let endsWithSEP = (candidate["token_ids"] as? [Int])?.last == 102
                        #expect(reason == (endsWithSEP ? "eos" : "length"), "\(candidate)")
                    }
                }
                #expect(line["timings"] is [String: Any] && (line["timings"] as? [String: Any])?["queue_ms"] == nil)
            }
            let texts = try #require(lines[2 * index + 1]["candidates"] as? [[String: Any]]).map { $0["text"] as? String }
            #expect(texts.allSatisfy { $0?.hasPrefix("a picture of") == true }, "\(texts)")
        }
    }

    /// Plain output with several prompts: the image, then each prompt labelled with its caption.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: binary.path), "build blip-caption first (swift build)"))
    func severalPromptsInPlainOutputAreLabelled() throws {
        let image = Fixtures.root.appendingPathComponent("images/astronaut_q90_420.jpg").path
        let r = try run(["--local", "--model", Fixtures.modelFolder("tiny-a").url.path, "--max-new-tokens", "6",
                         "--prompt", "", "--prompt", "a picture of", image])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        try #require(lines.count == 4, "stdout: \(r.stdout)")
        #expect(lines[0] == "\(image):")
        #expect(lines[1].hasPrefix("  (no prompt): "))
        #expect(lines[2].hasPrefix("  \"a picture of\": a picture of"), "\(lines[2])")
        #expect(lines[3] == "")
    }

    /// More prompts than one call may carry are refused while parsing, before the model loads.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: binary.path), "build blip-caption first (swift build)"))
    func ninePromptsAreRefusedBeforeAnyWork() throws {
        let image = Fixtures.root.appendingPathComponent("images/astronaut_q90_420.jpg").path
        let prompts = (1...9).flatMap { ["--prompt", "a picture \($0)"] }
        let r = try run(["caption", "--local", "--model", Fixtures.modelFolder("tiny-a").url.path, "--json"] + prompts + [image])
        #expect(r.status == 64, "ArgumentParser's validation failure (EX_USAGE): \(r.stderr)")
        #expect(r.stderr.contains("--prompt is given 9 times; at most 8 prompts per image"), "\(r.stderr)")
        #expect(r.stdout.isEmpty)
        #expect(!r.stderr.contains("loaded"), "the model must not load: \(r.stderr)")
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
        #expect(r.status == 64, "a usage error, found before the model loads: \(r.stderr)")
        #expect(r.stderr.contains("--top-p must be in (0, 1]"), "\(r.stderr)")
        #expect(!r.stderr.contains("loaded"), "\(r.stderr)")
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: binary.path), "build blip-caption first (swift build)"))
    func missingModelSaysWhatToDo() throws {
        let r = try run(["--local", "--model", "/nonexistent/model", "x.jpg"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("model not found"), "\(r.stderr)")
    }
}
