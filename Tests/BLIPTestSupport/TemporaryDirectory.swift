import Foundation
import Glibc

/// A fresh directory under `/tmp` (`mkdtemp`, mode 0700), removed with its contents when released.
///
/// `/tmp` rather than `$TMPDIR` keeps socket paths inside it well under `sun_path`'s 108 bytes.
public final class TemporaryDirectory: Sendable {
    /// The directory's absolute path.
    public let path: String

    /// Creates the directory.
    /// - Parameter prefix: The start of its name: `/tmp/PREFIX.XXXXXX`.
    public init(prefix: String = "blip-test") {
        var template = Array("/tmp/\(prefix).XXXXXX".utf8CString)
        path = template.withUnsafeMutableBufferPointer { buffer in
            guard let created = mkdtemp(buffer.baseAddress!) else {
                preconditionFailure("mkdtemp /tmp/\(prefix).XXXXXX: errno \(errno)")
            }
            return String(cString: created)
        }
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}
