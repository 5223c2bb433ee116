import Foundation
import Testing

/// The project's real units under a real `systemd --user` manager (scripts/systemd-user-test.sh):
/// socket activation, Type=notify, the watchdog killing a hung daemon, the restart keeping the
/// socket, and a template instance beside the plain service.
///
/// Where this machine cannot run a user manager the test is reported as skipped, with the reason
/// from the script's own check (`--precheck`: root, the tools, the debug build, `unshare --mount`,
/// a cgroup hierarchy). What only trying can tell (the manager not coming up in its namespace:
/// the full run exits 77) cancels the test with the script's reason (`Test.cancel`, printed as
/// "was cancelled"): neither counts as a pass of the units.
@Suite("systemd user manager", .serialized)
struct SystemdUserManagerTests {
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let script = packageRoot.appendingPathComponent("scripts/systemd-user-test.sh").path

    /// The script's precheck, run once and only when the test is selected: `runnable` unless it
    /// exits 77 (an unexpected failure lets the test run and fail on it), `reason` its SKIP line.
    static let precheck: (runnable: Bool, reason: String) = {
        guard let (status, text) = try? run(["/bin/bash", script, "--precheck"]) else {
            return (true, "")
        }
        let reason = text.split(separator: "\n").first { $0.hasPrefix("SKIP: ") }?.dropFirst(6) ?? Substring(text)
        return (status != 77, "systemd user-manager test cannot run here: " + reason)
    }()

    @Test(.enabled(if: precheck.runnable, Comment(rawValue: precheck.reason)), .timeLimit(.minutes(2)))
    func realUnitsUnderUserManager() throws {
        // timeout(1): a wedged manager must fail the test, not hang the suite (the script takes ~15 s).
        let (status, text) = try Self.run(["/usr/bin/timeout", "-s", "KILL", "100", "/bin/bash", Self.script])
        if status == 77 {
            let reason = text.split(separator: "\n").first { $0.hasPrefix("SKIP: ") }?.dropFirst(6) ?? "exit 77"
            try Test.cancel(Comment(rawValue: "systemd user-manager test did not run: \(reason)"))
        }
        #expect(status == 0, "scripts/systemd-user-test.sh failed:\n\(text)")
        let checks = text.split(separator: "\n").filter { $0.hasPrefix("PASS") || $0.hasPrefix("FAIL") }
        #expect(checks.count == 5, "expected five checks, got:\n\(text)")
        #expect(checks.allSatisfy { $0.hasPrefix("PASS") }, "\(text)")
    }

    /// Runs `arguments` (an absolute executable first); returns its exit status and its output
    /// (stdout and stderr together).
    static func run(_ arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
