import Foundation
import Testing

/// The project's real units under a real `systemd --user` manager (scripts/systemd-user-test.sh):
/// socket activation, Type=notify, the watchdog killing a hung daemon, and the restart keeping
/// the socket. The script exits 77 when this machine cannot run a user manager; the test is then
/// skipped (when the quick probe already says so) or records the script's reason.
@Suite("systemd user manager", .serialized)
struct SystemdUserManagerTests {
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let script = packageRoot.appendingPathComponent("scripts/systemd-user-test.sh").path

    /// What the script needs before it tries anything: root, the systemd tools, and the built daemon.
    /// (Whether `unshare` and the cgroups cooperate is the script's to find out; it exits 77 if not.)
    static let available: Bool = {
        let files = FileManager.default
        let tools = ["/usr/bin/systemd", "/usr/bin/systemctl", "/usr/bin/unshare", "/usr/bin/nsenter"]
        let binaries = [".build/debug/blip-captiond", ".build/debug/blip-caption"].map { packageRoot.appendingPathComponent($0).path }
        return getuid() == 0 && (tools + binaries + [script]).allSatisfy { files.isExecutableFile(atPath: $0) }
    }()

    @Test(.enabled(if: available, "needs root, systemd, unshare, nsenter and the debug build"), .timeLimit(.minutes(1)))
    func realUnitsUnderUserManager() throws {
        let process = Process()
        // timeout(1): a wedged manager must fail the test, not hang the suite (the script takes ~10 s).
        process.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
        process.arguments = ["-s", "KILL", "90", "/bin/bash", Self.script]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)

        if process.terminationStatus == 77 {
            // The machine cannot run a user manager: not a failure of the units, but say why.
            let reason = text.split(separator: "\n").first { $0.hasPrefix("SKIP") } ?? "exit 77"
            Issue.record("systemd user-manager test did not run: \(reason)", severity: .warning)
            return
        }
        #expect(process.terminationStatus == 0, "scripts/systemd-user-test.sh failed:\n\(text)")
        let checks = text.split(separator: "\n").filter { $0.hasPrefix("PASS") || $0.hasPrefix("FAIL") }
        #expect(checks.count == 4, "expected four checks, got:\n\(text)")
        #expect(checks.allSatisfy { $0.hasPrefix("PASS") }, "\(text)")
    }
}
