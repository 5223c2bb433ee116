import BLIPProtocol
import BLIPTestSupport
import Foundation
import Glibc
import Testing

extension ReliabilitySuite {
    /// Issue 13: the weights file changed under a running daemon — truncated in place, then
    /// overwritten in place with another checkpoint (`cp` over it), then a SIGHUP while it is
    /// truncated — never crashes it (before: SIGBUS on the next caption) and never changes its
    /// captions silently: they keep coming, identical, and the log says the file changed.
    @Test func aModelFileChangedUnderTheDaemonNeverCrashesIt() throws {
        let folder = TemporaryDirectory(prefix: "blip-model")
        for name in try FileManager.default.contentsOfDirectory(atPath: Paths.tinyA.path) {
            try FileManager.default.copyItem(atPath: Paths.tinyA.appendingPathComponent(name).path, toPath: folder.path + "/" + name)
        }
        let weights = folder.path + "/model.safetensors"
        let daemon = try DaemonProcess(model: URL(fileURLWithPath: folder.path))
        let c = try RawClient(path: daemon.socketPath)
        let request = CaptionRequest(image: .init(data: try Paths.image("rocket.png")), options: .init(numBeams: 1, maxNewTokens: 6))
        func caption(_ what: String) throws -> [[UInt32]]? {
            let response = try c.caption(request, timeout: 30)
            #expect(response.statusCode == .ok, "\(what): \(response.statusCode.name) \(response.statusMessage)")
            #expect(daemon.isRunning, "\(what): the daemon died (signal: \(daemon.endedBySignal))\n\(daemon.log)")
            return response.statusCode == .ok ? try CaptionResponse(decoding: response.payload).candidates.map(\.tokenIDs) : nil
        }
        let first = try caption("before any change")
        // The weights are the file's pages until the daemon has copied them (right after READY).
        let copied = Date(timeIntervalSinceNow: 20)
        while !daemon.log.contains("weights copied into memory the daemon owns"), Date() < copied { usleep(20_000) }
        #expect(daemon.log.contains("weights copied into memory the daemon owns"), "\(daemon.log)")

        // 1. Truncate in place to half its size.
        let size = try #require(FileManager.default.attributesOfItem(atPath: weights)[.size] as? Int)
        #expect(truncate(weights, off_t(size / 2)) == 0)
        #expect(try caption("after truncating in place") == first)

        // 2. Overwrite in place with a different checkpoint (what `cp other/model.safetensors .` does).
        let other = try Data(contentsOf: PackagePaths.fixtures.appendingPathComponent("models/tiny-b/model.safetensors"))
        let handle = try #require(FileHandle(forWritingAtPath: weights))
        try handle.truncate(atOffset: 0)
        try handle.write(contentsOf: other)
        try handle.close()
        #expect(try caption("after overwriting in place") == first, "the loaded model must not change under the daemon")

        // 3. A reload of a truncated file is refused and the loaded model keeps serving.
        #expect(truncate(weights, 100) == 0)
        kill(daemon.pid, SIGHUP)
        let until = Date(timeIntervalSinceNow: 20)
        while !daemon.log.contains("reload failed"), Date() < until { usleep(50_000) }
        #expect(daemon.log.contains("reload failed"), "\(daemon.log)")
        #expect(try caption("after a refused reload") == first)

        // The change was noticed and logged (the watch polls every 2 s).
        let logged = Date(timeIntervalSinceNow: 5)
        while !daemon.log.contains("changed on disk"), Date() < logged { usleep(100_000) }
        #expect(daemon.log.contains("changed on disk since it was loaded"), "\(daemon.log)")
        #expect(daemon.isRunning)
        let status = try daemon.stop()
        #expect(!daemon.endedBySignal && status == 0, "exit status \(status), log:\n\(daemon.log)")
    }

    /// The window before the weights are copied into owned memory (held open here by a test hook):
    /// a truncation there makes the next caption touch a page past the end of the file. The daemon
    /// exits with status 75 and one line saying why, for systemd to restart it, never by SIGBUS
    /// (before the handler: killed by the signal).
    @Test func aTruncationBeforeTheWeightsAreCopiedIsACleanExit() throws {
        let folder = TemporaryDirectory(prefix: "blip-model")
        for name in try FileManager.default.contentsOfDirectory(atPath: Paths.tinyA.path) {
            try FileManager.default.copyItem(atPath: Paths.tinyA.appendingPathComponent(name).path, toPath: folder.path + "/" + name)
        }
        let weights = folder.path + "/model.safetensors"
        let daemon = try DaemonProcess(model: URL(fileURLWithPath: folder.path), arguments: ["--test-weights-copy-delay", "30"])
        #expect(truncate(weights, 4096) == 0)
        let c = try RawClient(path: daemon.socketPath)
        let request = CaptionRequest(image: .init(data: try Paths.image("rocket.png")), options: .init(numBeams: 1, maxNewTokens: 6))
        try c.send(.request(callID: 1, method: .caption, message: request))
        let status = try daemon.waitForExit(timeout: 20)
        #expect(!daemon.endedBySignal, "killed by a signal:\n\(daemon.log)")
        #expect(status == 75, "exit status \(status), log:\n\(daemon.log)")
        #expect(daemon.log.contains("SIGBUS: a mapped file shrank under the daemon"), "\(daemon.log)")
    }
}
