import BLIPTestSupport
import Foundation
import Glibc
import Testing

/// The daemon's log lines: sd-daemon priority prefixes and no `blip-captiond: ` when stderr is
/// the journal stream `JOURNAL_STREAM` names (here a file the shell points it at, as systemd
/// points it at its journal socket), today's `blip-captiond: TEXT` otherwise.
@Suite struct JournalLogTests {
    static let binary = PackagePaths.daemon
    static let available = FileManager.default.isExecutableFile(atPath: binary)

    /// Sets `JOURNAL_STREAM` to the `DEV:INODE` of the shell's stderr, the daemon's log file.
    static let journalPrefix = "export JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2)"

    /// `DEV:INODE` of `path`, as systemd writes `JOURNAL_STREAM` (decimal).
    static func deviceAndInode(_ path: String) throws -> String {
        var status = stat()
        try #require(stat(path, &status) == 0, "stat \(path): errno \(errno)")
        return "\(status.st_dev):\(status.st_ino)"
    }

    /// `NAME=value` of the running process's environment.
    static func environment(of pid: Int32, _ name: String) -> String? {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return nil }
        return data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            .first { $0.hasPrefix(name + "=") }.map { String($0.dropFirst(name.count + 1)) }
    }

    static func lines(_ log: String) -> [String] { log.split(separator: "\n").map(String.init) }

    /// A start-up, a refused peer (warning) and a clean stop, written for the journal.
    @Test(.enabled(if: available, "needs the built blip-captiond (swift build)"))
    func journalLinesCarryPrioritiesAndNoProgramName() throws {
        let directory = TemporaryDirectory()
        // --allow-uid 4242: the readiness probe (this process, another uid) is let in to
        // connect and logged as a peer whose requests will be refused.
        let daemon = try DaemonProcess(executable: PackagePaths.fakeDaemon, rawArguments: ["--socket", directory.path + "/blip.sock", "--allow-uid", "4242"],
                                       in: directory, shellPrefix: Self.journalPrefix, wait: .accepting)
        #expect(Self.environment(of: daemon.pid, "JOURNAL_STREAM") == (try Self.deviceAndInode(daemon.logPath)),
                "the daemon's JOURNAL_STREAM names its stderr file")
        Thread.sleep(forTimeInterval: 0.2)  // the probe's connection is logged from the event loop
        #expect(try daemon.stop() == 0)

        let lines = Self.lines(daemon.log)
        try #require(lines.count >= 5, "\(daemon.log)")
        for line in lines {
            #expect(line.hasPrefix("<6>") || line.hasPrefix("<4>"), "\(line)")
            #expect(!line.contains("blip-captiond: "), "\(line)")
        }
        #expect(lines.first?.hasPrefix("<6>loading model ") == true, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("<6>serving on ") }, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("<4>conn 1: open (") && $0.contains("not in --allow-uid") }, "\(lines)")
        #expect(lines.last == "<6>exiting (shutdown requested)")
    }

    /// A start-up failure (`fail(…)`) is an error: `journalctl -p err` finds it.
    @Test(.enabled(if: available, "needs the built blip-captiond (swift build)"))
    func startUpFailureIsAnError() throws {
        let directory = TemporaryDirectory()
        let daemon = try DaemonProcess(model: URL(fileURLWithPath: directory.path + "/no-such-model"), in: directory,
                                       shellPrefix: Self.journalPrefix, wait: .started)
        #expect(try daemon.waitForExit(timeout: 30) == 1)
        let lines = Self.lines(daemon.log)
        #expect(lines.first?.hasPrefix("<6>loading model ") == true, "\(lines)")
        #expect(lines.last?.hasPrefix("<3>loading the model failed: ") == true, "\(lines)")
    }

    /// No `JOURNAL_STREAM`, or one that names another file (stderr redirected after systemd
    /// started the process): every line is `blip-captiond: TEXT`, with no priority.
    @Test(.enabled(if: available, "needs the built blip-captiond (swift build)"), arguments: [nil, "0:0"] as [String?])
    func otherStderrKeepsTheProgramName(journalStream: String?) throws {
        let directory = TemporaryDirectory()
        var environment = DaemonProcess.isolatedEnvironment
        environment["JOURNAL_STREAM"] = journalStream
        let daemon = try DaemonProcess(executable: PackagePaths.fakeDaemon, rawArguments: ["--socket", directory.path + "/blip.sock"],
                                       in: directory, environment: environment, wait: .serving)
        #expect(try daemon.stop() == 0)
        let lines = Self.lines(daemon.log)
        try #require(lines.count >= 5, "\(daemon.log)")
        for line in lines { #expect(line.hasPrefix("blip-captiond: ") && !line.contains("<6>"), "\(line)") }
        #expect(lines.first?.hasPrefix("blip-captiond: loading model ") == true, "\(lines)")
    }
}
