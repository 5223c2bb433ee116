import BLIPTestSupport
import Foundation
import Testing

/// Several prompts per image through the real daemon: `blip-caption --prompt … --prompt …` sends
/// one `prompts` call, and every prompt's captions are transformers' for that prompt alone.
extension DaemonEndToEndTests {
    /// transformers' beam-3 captions of `image` without a prompt and with "a picture of" (its
    /// generate() defaults for the lengths: 20 new tokens at most, no minimum).
    struct PromptGoldens { var image: String; var unconditional: [[UInt32]]; var pictureOf: [[UInt32]] }
    static func promptGoldens() throws -> [PromptGoldens] {
        let all = try JSONDecoder().decode([Golden].self, from: Data(contentsOf: fixtures.appendingPathComponent("golden/tiny-a/generation.json")))
        // Images without an EXIF orientation, so the daemon's default (apply it) changes nothing.
        return try ["astronaut_q90_420.jpg", "rgba_astronaut.png"].map { image in
            let plain = try #require(all.first { $0.name == "beam3_lp1" && $0.image == image })
            let prompted = try #require(all.first { $0.name == "beam3_prompt" && $0.image == image })
            return PromptGoldens(image: image, unconditional: plain.sequences, pictureOf: prompted.sequences)
        }
    }

    @Test(.enabled(if: built, "build the package first (swift build --build-tests)"))
    func cliWithSeveralPromptsThroughTheDaemonMatchesTransformersAndLocal() throws {
        let daemon = try Self.daemon()
        let cli = Self.cli
        let goldens = try Self.promptGoldens()
        let images = goldens.map { Self.fixtures.appendingPathComponent("images/\($0.image)").path }
        let options = ["--json", "--num-beams", "3", "--max-new-tokens", "20", "--min-length", "0", "--prompt", "", "--prompt", "a picture of"]
        let viaDaemon = try run(cli, ["caption", "--socket", daemon.socketPath] + options + images)
        let local = try run(cli, ["caption", "--local", "--model", Self.fixtures.appendingPathComponent("models/tiny-a").path] + options + images)
        #expect(viaDaemon.status == 0 && local.status == 0, "\(viaDaemon.stderr)\n\(local.stderr)")

        func lines(_ stdout: String) throws -> [[String: Any]] {
            try stdout.split(separator: "\n").map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        }
        let daemonLines = try lines(viaDaemon.stdout), localLines = try lines(local.stdout)
        try #require(daemonLines.count == 4 && localLines.count == 4, "\(viaDaemon.stdout)")
        #expect(daemonLines.map { $0["image"] as? String } == [images[0], images[0], images[1], images[1]])
        #expect(daemonLines.map { $0["prompt"] as? String } == ["", "a picture of", "", "a picture of"])
        for (index, golden) in goldens.enumerated() {
            for (offset, expected) in [golden.unconditional, golden.pictureOf].enumerated() {
                let line = daemonLines[2 * index + offset]
                let candidates = try #require(line["candidates"] as? [[String: Any]])
                #expect(candidates.map { ($0["token_ids"] as? [Int])?.map(UInt32.init) } == expected.map { $0 },
                        "\(golden.image), prompt \(line["prompt"] ?? "-")")
                // --local runs the daemon's own service: the same candidates, only the timings differ.
                let localCandidates = try #require(localLines[2 * index + offset]["candidates"] as? [[String: Any]])
                #expect(NSArray(array: candidates).isEqual(to: localCandidates), "\(candidates) vs \(localCandidates)")
                #expect((line["timings"] as? [String: Any])?["queue_ms"] is Double, "through the daemon timings include the queue wait")
            }
        }

        let info = try run(cli, ["info", "--socket", daemon.socketPath])
        #expect(info.status == 0 && info.stdout.contains("8 prompts"), "\(info.stdout)")
        #expect(try daemon.stop() == 0)
    }
}
