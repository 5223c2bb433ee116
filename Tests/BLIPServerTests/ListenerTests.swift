import BLIPServer
import BLIPTestSupport
import Foundation
import Glibc
import Testing

/// Binding the socket by hand: directories, modes, stale and live sockets.
@Suite struct ListenerTests {
    @Test func bindCreatesDirectoryAndAppliesMode() throws {
        let directory = TemporaryDirectory()
        let path = directory.path + "/a/b/blip.sock"
        let listener = try ListeningSocket.bind(path: path, mode: 0o600)
        var info = stat()
        #expect(lstat(path, &info) == 0)
        #expect(info.st_mode & S_IFMT == S_IFSOCK)
        #expect(info.st_mode & 0o777 == 0o600)
        listener.close()
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func staleSocketIsReplaced() throws {
        let directory = TemporaryDirectory()
        let path = directory.path + "/blip.sock"
        // A socket file nobody listens on: bound, then its descriptor closed without unlink.
        let stale = try ListeningSocket.bind(path: path)
        Glibc.close(stale.fileDescriptor)
        let listener = try ListeningSocket.bind(path: path)
        defer { listener.close() }
        _ = try RawClient(path: path)  // connect succeeds: the new socket listens
    }

    @Test func liveSocketIsNotStolen() throws {
        let directory = TemporaryDirectory()
        let path = directory.path + "/blip.sock"
        let live = try ListeningSocket.bind(path: path)
        defer { live.close() }
        #expect(throws: ListenerError.socketInUse(path: path)) { try ListeningSocket.bind(path: path) }
    }

    @Test func regularFileIsNotReplaced() throws {
        let directory = TemporaryDirectory()
        let path = directory.path + "/blip.sock"
        _ = FileManager.default.createFile(atPath: path, contents: Data("keep".utf8))
        #expect(throws: ListenerError.notASocket(path: path)) { try ListeningSocket.bind(path: path) }
        #expect(FileManager.default.contents(atPath: path) == Data("keep".utf8))
    }

    /// Any name is the caption API (systemd's defaults are the socket unit's name, or "unknown"),
    /// except the names reserved for other roles.
    @Test(arguments: [("blip-captiond", ListeningSocket.Role.captionAPI), ("blip-captiond.socket", .captionAPI),
                      ("captions.socket", .captionAPI), ("blip-captiond@large.socket", .captionAPI),
                      ("unknown", .captionAPI), ("http", .http)])
    func socketRoleByName(name: String, role: ListeningSocket.Role) {
        #expect(ListeningSocket.role(forName: name) == role)
    }

    @Test func overlongPathIsRefused() {
        let path = "/tmp/" + String(repeating: "x", count: 200)
        #expect(throws: ListenerError.pathTooLong(path: path, limit: 107)) { try ListeningSocket.bind(path: path) }
    }
}
