import BLIPTestSupport
import Foundation
import Testing

/// The unit files in systemd/ parse cleanly and carry the settings the daemon relies on.
@Suite struct UnitFileTests {
    static let systemdDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("systemd")
    static let analyze = "/usr/bin/systemd-analyze"

    /// The units' `Key=value` lines, all sections together (keys may repeat).
    static func settings(_ unit: String) throws -> [(key: String, value: String)] {
        let text = try String(contentsOf: systemdDirectory.appendingPathComponent(unit), encoding: .utf8)
        return text.split(separator: "\n").compactMap { line in
            guard !line.hasPrefix("#"), !line.hasPrefix("["), let equals = line.firstIndex(of: "=") else { return nil }
            return (String(line[..<equals]), String(line[line.index(after: equals)...]))
        }
    }

    @Test func socketUnitSettings() throws {
        let settings = try Self.settings("blip-captiond.socket")
        for (key, value) in [("ListenStream", "/run/blip-captiond/blip-captiond.sock"), ("SocketMode", "0660"),
                             ("SocketGroup", "blip-caption"), ("FileDescriptorName", "blip-captiond"),
                             ("Accept", "no")] {
            #expect(settings.contains { $0 == (key, value) }, "\(key)=\(value) missing")
        }
    }

    @Test func serviceUnitSettings() throws {
        let settings = try Self.settings("blip-captiond.service")
        for (key, value) in [("Type", "notify"), ("WatchdogSec", "30"), ("DynamicUser", "yes"),
                             ("Environment", "BLIP_MODEL=/var/lib/blip-captiond/model"),
                             ("StateDirectory", "blip-captiond"), ("ProtectSystem", "strict"),
                             ("ProtectHome", "yes"), ("PrivateNetwork", "yes"), ("PrivateDevices", "yes"),
                             ("NoNewPrivileges", "yes"), ("MemoryDenyWriteExecute", "yes"),
                             ("RestrictAddressFamilies", "AF_UNIX"), ("SystemCallFilter", "@system-service")] {
            #expect(settings.contains { $0 == (key, value) }, "\(key)=\(value) missing")
        }
        // ~@resources would kill OpenBLAS (mbind) with SIGSYS.
        #expect(!settings.contains { $0.key == "SystemCallFilter" && $0.value.contains("~@resources") })
    }

    /// The template socket: one socket per model, named by the instance, the rest as the plain
    /// socket (no `FileDescriptorName=`: the unit's own name is adopted, whatever the instance).
    @Test func templateSocketMirrorsThePlainSocket() throws {
        let plain = try Self.settings("blip-captiond.socket").filter { $0.key != "Description" && $0.key != "FileDescriptorName" }
            .map { "\($0.key)=\($0.value)" }
            .map { $0 == "ListenStream=/run/blip-captiond/blip-captiond.sock" ? "ListenStream=/run/blip-captiond/%i.sock" : $0 }
        let template = try Self.settings("blip-captiond@.socket").filter { $0.key != "Description" }
        #expect(template.map { "\($0.key)=\($0.value)" } == plain)
        #expect(!template.contains { $0.key == "FileDescriptorName" })
    }

    /// The template service: the plain service's settings (Type=notify, watchdog, sandbox, the
    /// optional EnvironmentFile whose `$BLIP_CAPTIOND_OPTIONS` ExecStart= appends, …) with the
    /// instance's socket, model folder and EnvironmentFile.
    @Test func templateServiceMirrorsThePlainService() throws {
        let renamed: [String: String] = [
            "Requires=blip-captiond.socket": "Requires=blip-captiond@%i.socket",
            "After=blip-captiond.socket": "After=blip-captiond@%i.socket",
            "Also=blip-captiond.socket": "Also=blip-captiond@%i.socket",
            "Environment=BLIP_MODEL=/var/lib/blip-captiond/model": "Environment=BLIP_MODEL=/var/lib/blip-captiond/%i",
            "EnvironmentFile=-/etc/blip-captiond/blip-captiond.conf": "EnvironmentFile=-/etc/blip-captiond/%i.conf",
        ]
        let plain = try Self.settings("blip-captiond.service").filter { $0.key != "Description" }
            .map { "\($0.key)=\($0.value)" }.map { renamed[$0] ?? $0 }
        let template = try Self.settings("blip-captiond@.service").filter { $0.key != "Description" }
            .map { "\($0.key)=\($0.value)" }
        #expect(template == plain)
        for (unit, settings) in [("blip-captiond.service", plain), ("blip-captiond@.service", template)] {
            // After Environment=BLIP_MODEL=, so that the file may override it; its options reach ExecStart=.
            let model = try #require(settings.firstIndex { $0.hasPrefix("Environment=BLIP_MODEL=") }, "\(unit)")
            let file = try #require(settings.firstIndex { $0.hasPrefix("EnvironmentFile=-/etc/blip-captiond/") }, "\(unit)")
            #expect(model < file, "\(unit)")
            #expect(settings.contains("ExecStart=/usr/local/bin/blip-captiond --idle-exit 600 $BLIP_CAPTIOND_OPTIONS"), "\(unit)")
        }
    }

    /// The plain service's settings file, as the package and install.sh install it: an environment
    /// file whose every setting is a commented example (nothing changes until an operator edits it).
    @Test func settingsFileIsCommentedExamples() throws {
        let text = try String(contentsOf: Self.systemdDirectory.appendingPathComponent("blip-captiond.conf"), encoding: .utf8)
        let lines = text.split(separator: "\n")
        #expect(lines.allSatisfy { $0.hasPrefix("#") }, "every line is a comment")
        for name in ["BLIP_CAPTIOND_OPTIONS", "BLIP_MODEL", "BLIP_THREADS", "OPENBLAS_CORETYPE"] {
            #expect(lines.contains { $0.hasPrefix("#\(name)=") }, "an example of \(name)")
        }
    }

    /// `systemd-analyze verify` exits 0 even on parse warnings, so any output is a failure.
    /// ExecStart= must name an existing executable for verify; the copy points it at /bin/true.
    /// The templates are verified as an instance (`blip-captiond@large.*`), which is how systemd
    /// loads them (specifiers expanded).
    @Test(.enabled(if: RequiredTool.systemdAnalyze.runs, "systemd-analyze is not installed"),
          arguments: [["blip-captiond.socket", "blip-captiond.service"], ["blip-captiond@large.socket", "blip-captiond@large.service"]])
    func unitsVerifyWithoutOutput(units: [String]) throws {
        let directory = TemporaryDirectory()
        for unit in ["blip-captiond.socket", "blip-captiond.service", "blip-captiond@.socket", "blip-captiond@.service"] {
            var text = try String(contentsOf: Self.systemdDirectory.appendingPathComponent(unit), encoding: .utf8)
            text = text.replacingOccurrences(of: "ExecStart=/usr/local/bin/blip-captiond", with: "ExecStart=/bin/true")
            try text.write(toFile: directory.path + "/" + unit, atomically: true, encoding: .utf8)
        }
        let (status, output) = try run(Self.analyze, ["verify"] + units, in: directory.path)
        #expect(status == 0)
        #expect(output == "", "systemd-analyze verify \(units) said: \(output)")

        // The sandbox's exposure score (0 = locked down, 10 = unprotected).
        let (_, security) = try run(Self.analyze, ["security", "--offline=yes", units[1]], in: directory.path)
        let line = try #require(security.split(separator: "\n").first { $0.contains("Overall exposure level") })
        let score = try #require(line.split(separator: " ").compactMap { Double($0) }.first)
        #expect(score <= 2.0, "\(line)")
    }

    /// The exit status and everything printed (standard output, then standard error).
    private func run(_ executable: String, _ arguments: [String], in directory: String) throws -> (Int32, String) {
        let output = try ProcessOutput.run(executable, arguments, directory: directory)
        return (output.status, output.stdout + output.stderr)
    }
}
