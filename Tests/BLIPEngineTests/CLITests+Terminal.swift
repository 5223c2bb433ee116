import BLIPTestSupport
import Foundation
import Testing

/// The progress bar on a terminal (a pseudo-terminal from util-linux `script`), and its absence
/// on a pipe.
extension CLITests {
    static let script = "/usr/bin/script"

    /// On a terminal the bar shows 0 of N before the first image is done, and every caption
    /// starts on a cleared line, never after the bar's text.
    @Test(.enabled(if: built && FileManager.default.isExecutableFile(atPath: script), "needs blip-caption and util-linux script"))
    func progressOnATerminalStartsAtZeroAndClearsItsLine() throws {
        let images = ["rocket.png", "astronaut_q90_420.jpg"].map { Fixtures.root.appendingPathComponent("images/\($0)").path }
        let command = ([Self.binary.path, "--local", "--model", Fixtures.modelFolder("tiny-a").url.path, "--max-new-tokens", "2"] + images)
            .map { "'\($0)'" }.joined(separator: " ")
        // stdout and stderr both go to the pseudo-terminal, as in a user's shell.
        let r = try run(script: ["-qefc", command, "/dev/null"])
        #expect(r.status == 0, "\(r.stdout)")
        let clear = "\r\u{1B}[K"
        let firstCaption = try #require(r.stdout.range(of: images[0] + ":"), "\(r.stdout.debugDescription)")
        let before = r.stdout[..<firstCaption.lowerBound]
        #expect(before.contains("0/2"), "a bar before the first image is done: \(before.debugDescription)")
        #expect(before.hasSuffix(clear), "the caption starts on a cleared line: \(before.debugDescription)")
        let second = try #require(r.stdout.range(of: images[1] + ":"))
        #expect(r.stdout[..<second.lowerBound].hasSuffix(clear), "\(r.stdout.debugDescription)")
        #expect(r.stdout.contains("2/2"))
    }

    /// A narrow terminal gets a shorter bar or counts only, never a line that wraps; the summary
    /// line replaces the bar at the end.
    @Test(.enabled(if: built && FileManager.default.isExecutableFile(atPath: script), "needs blip-caption and util-linux script"),
          arguments: [24, 60])
    func progressFitsANarrowTerminal(columns: Int) throws {
        let images = ["rocket.png", "astronaut_q90_420.jpg", "gray_moon.png"].map { Fixtures.root.appendingPathComponent("images/\($0)").path }
        let command = "stty cols \(columns); " + ([Self.binary.path, "--local", "--model", Fixtures.modelFolder("tiny-a").url.path, "--max-new-tokens", "2"] + images)
            .map { "'\($0)'" }.joined(separator: " ") + " >/dev/null"
        let r = try run(script: ["-qefc", command, "/dev/null"])
        #expect(r.status == 0, "\(r.stdout)")
        let clear = "\r\u{1B}[K"
        let bars = r.stdout.components(separatedBy: clear).dropFirst().map { $0.components(separatedBy: "\r\n")[0] }
        #expect(bars.contains { $0.contains("3/3") }, "\(r.stdout.debugDescription)")
        for bar in bars where bar.contains("/3") {
            #expect(bar.count < columns, "\(bar.debugDescription) in \(columns) columns")
        }
        #expect(columns < 40 || bars.contains { $0.hasPrefix("[#") }, "a bar where there is room: \(bars)")
        let end = try #require(r.stdout.range(of: clear, options: .backwards))
        #expect(r.stdout[end.upperBound...].hasPrefix("blip-caption: captioned 3, skipped 0"), "\(r.stdout.debugDescription)")
    }

    /// Not a terminal: no bar, no escape sequences.
    @Test(.enabled(if: built, "build blip-caption first (swift build)"))
    func noProgressOnAPipe() throws {
        let images = ["rocket.png", "astronaut_q90_420.jpg"].map { Fixtures.root.appendingPathComponent("images/\($0)").path }
        let r = try run(["--local", "--model", Fixtures.modelFolder("tiny-a").url.path, "--max-new-tokens", "2"] + images)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(!r.stderr.contains("\u{1B}") && !r.stdout.contains("\u{1B}") && !r.stderr.contains("0/2"), "\(r.stderr)")
    }

    /// `script` with its pseudo-terminal's output (stdout and stderr of the command) as stdout.
    func run(script arguments: [String]) throws -> Run {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.script)
        process.arguments = arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: "")
    }
}
