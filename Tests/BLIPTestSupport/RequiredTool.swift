import Foundation

/// Tools from the machine that some tests need. Where one is missing, such a test is reported as
/// skipped (Swift Testing's `.enabled(if:)`), never as passed — except under the project's test
/// command, scripts/test.sh, which installs every one of them and sets `BLIP_TESTS_REQUIRE_TOOLS=1`:
/// there the tests run anyway and fail on the missing tool.
public enum RequiredTool: String, CaseIterable, Sendable {
    case systemdSocketActivate = "/usr/bin/systemd-socket-activate"
    case systemdAnalyze = "/usr/bin/systemd-analyze"
    case promtool = "/usr/bin/promtool"
    /// examples/python/caption.py's needs: the protobuf runtime and a protoc (grpcio-tools', or
    /// protoc on PATH), for `python3` as found on PATH (scripts/test.sh puts its venv first).
    case pythonProtobuf = "python3 with protobuf and grpcio-tools (or protoc)"

    /// Set by scripts/test.sh.
    public static let mustBePresent = ProcessInfo.processInfo.environment["BLIP_TESTS_REQUIRE_TOOLS"] == "1"

    /// Whether the tool is on this machine (looked up once per process).
    public var isPresent: Bool { Self.presence[self] ?? false }

    /// Whether a test that needs the tool runs: when the tool is present, or when it must be
    /// (the test then fails on its absence).
    public var runs: Bool { isPresent || Self.mustBePresent }

    private static let presence: [RequiredTool: Bool] = Dictionary(uniqueKeysWithValues: allCases.map { tool in
        switch tool {
        case .pythonProtobuf:
            let check = "import google.protobuf, shutil, importlib.util as u; "
                + "assert u.find_spec('grpc_tools') or shutil.which('protoc')"
            return (tool, (try? ProcessOutput.run("/usr/bin/env", ["python3", "-c", check]).status) == 0)
        default:
            return (tool, FileManager.default.isExecutableFile(atPath: tool.rawValue))
        }
    })
}
