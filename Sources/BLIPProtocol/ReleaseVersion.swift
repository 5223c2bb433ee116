/// The release this build is: the one version string of the project. `--version` on both
/// executables, the daemon's `InfoResponse.engine_version` and the Debian package's version
/// (scripts/package-deb.sh reads it from `blip-captiond --version`) all come from here;
/// CHANGELOG.md's newest entry must name it (a test checks).
public enum ReleaseVersion {
    /// Semantic version of blip-captiond, the CLI and the client library, e.g. `"0.4.3"`.
    public static let current = "0.4.3"

    /// What `--version` prints for `program`: `"blip-captiond 0.4.3"` (the GNU form help2man and
    /// packagers read).
    public static func line(for program: String) -> String { "\(program) \(current)" }
}
