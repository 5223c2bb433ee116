import BLIPProtocol
import BLIPTestSupport
import Foundation
import Testing

/// Decoding options as the CLI takes them: validated once before any image is read or sent,
/// negative numbers as values, warnings for options that have no effect, flag names in messages,
/// and `--version`.
extension CLITests {
    /// A bad option over a folder of images: one message naming the flag, exit status 64, and no
    /// image read or sent (there is no daemon at the socket, which would otherwise be exit 2).
    @Test(.enabled(if: built, "build blip-caption first (swift build)"),
          arguments: [(["--do-sample", "--top-p", "1.5"], "--top-p must be in (0, 1] (1 disables top-p), got 1.5"),
                      (["--num-beams", "0"], "--num-beams must be >= 1, got 0"),
                      (["--temperature", "-1", "--do-sample"], "--temperature must be a finite number > 0, got -1.0"),
                      (["--top-k", "-3"], "--top-k must be >= 0 (0 disables top-k), got -3"),
                      (["--num-beams", "1", "--num-return-sequences", "2"], "--num-return-sequences must be 1 for greedy decoding (--num-beams 1 without --do-sample), got 2")])
    func invalidOptionsAreRefusedOnceBeforeAnyImage(options: [String], message: String) throws {
        let r = try run(["caption", "--socket", "/nonexistent/blip.sock"] + options + [Fixtures.root.appendingPathComponent("images").path])
        #expect(r.status == 64, "\(r.stderr)")
        #expect(r.stdout.isEmpty)
        #expect(r.stderr.components(separatedBy: "must be").count == 2, "one message: \(r.stderr)")
        #expect(r.stderr.contains(message), "\(r.stderr)")
        #expect(!r.stderr.contains("no daemon"), "nothing was sent: \(r.stderr)")
        #expect(!r.stderr.contains("_"), "flag names, not transformers' or the wire's: \(r.stderr)")
    }

    /// Negative values reach the option instead of being read as flags ("Missing value").
    @Test(.enabled(if: built, "build blip-caption first (swift build)"))
    func negativeNumbersAreValues() throws {
        let image = Fixtures.root.appendingPathComponent("images/rocket.png").path
        let (r, images) = try captionedImages(["--num-beams", "2", "--length-penalty", "-1.5", image])
        #expect(r.status == 0, "a negative length penalty favours short captions: \(r.stderr)")
        #expect(images == [image])
        #expect(!r.stderr.contains("Missing value"))
    }

    /// As transformers warns in `generate()`: options that the others make meaningless.
    @Test(.enabled(if: built, "build blip-caption first (swift build)"))
    func ignoredOptionsAreWarnedAbout() throws {
        let image = Fixtures.root.appendingPathComponent("images/rocket.png").path
        let (r, _) = try captionedImages(["--temperature", "0.7", "--top-k", "5", "--max-length", "12", "--max-new-tokens", "3", image])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("warning: --temperature has no effect without --do-sample"), "\(r.stderr)")
        #expect(r.stderr.contains("warning: --top-k has no effect without --do-sample"), "\(r.stderr)")
        #expect(r.stderr.contains("warning: --max-new-tokens and --max-length are both given; --max-new-tokens takes precedence"), "\(r.stderr)")
        let sampled = try captionedImages(["--do-sample", "--seed", "1", "--temperature", "0.7", image]).0
        #expect(sampled.status == 0 && !sampled.stderr.contains("warning"), "nothing ignored: \(sampled.stderr)")
        let greedy = try captionedImages(["--num-beams", "1", "--early-stopping", image]).0
        #expect(greedy.stderr.contains("warning: --early-stopping has no effect with one beam"), "\(greedy.stderr)")
    }

    /// Both executables print the one version; the changelog's newest release is that version.
    @Test(.enabled(if: CLITests.daemonBuilt, "build blip-caption and blip-captiond first (swift build --build-tests)"))
    func versionIsTheReleaseVersionEverywhere() throws {
        #expect(try run(["--version"]).stdout == "blip-caption \(ReleaseVersion.current)\n")
        let daemon = try ProcessOutput.run(PackagePaths.daemon, ["--version"])
        #expect(daemon.status == 0 && daemon.stdout == "blip-captiond \(ReleaseVersion.current)\n", "\(daemon.stdout)")
        let changelog = try String(contentsOf: PackagePaths.root.appendingPathComponent("CHANGELOG.md"), encoding: .utf8)
        let newest = changelog.split(separator: "\n").first { $0.hasPrefix("## [") }
        #expect(newest?.hasPrefix("## [\(ReleaseVersion.current)]") == true, "CHANGELOG.md's newest entry: \(newest ?? "none")")
    }
}

/// Every row of the option table is a flag of `caption`, with the row's help.
extension CLITests {
    @Test(.enabled(if: built, "build blip-caption first (swift build)"))
    func everyOptionRowIsAFlag() throws {
        let help = try run(["caption", "--help"]).stdout
        for option in DecodingOption.allCases {
            #expect(help.contains(option.flag), "\(option.flag) is missing from blip-caption caption --help")
            let words = option.row.help.split(separator: " ").prefix(3).joined(separator: " ")
            #expect(help.contains(words), "\(option.flag)'s help is not the row's: \(words)")
        }
    }
}
