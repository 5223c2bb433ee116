import BLIPProtocol
import BLIPTestSupport
import Foundation
import Glibc
import Testing

/// `--max-image-bytes` and `--max-frame-bytes` together: the largest image always fits a frame.
@Suite struct FrameLimitTests {
    static let binary = EndToEndTests.binary

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: binary), "needs the built blip-captiond"))
    func theFrameLimitFollowsALargerImageLimit() throws {
        let directory = TemporaryDirectory()
        let daemon = try EndToEndTests.activated(directory, arguments: ["--max-image-bytes", "\(50 << 20)"])
        defer { kill(daemon.pid, SIGTERM); daemon.process.waitUntilExit() }
        let client = try RawClient(path: directory.path + "/blip.sock")
        try client.send(.request(callID: 1, method: .info, message: InfoRequest()))
        let info = try InfoResponse(decoding: #require(try client.receive(timeout: 10)).payload)
        #expect(info.limits.maxFrameBytes == UInt64((50 << 20) + (256 << 10)))
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: binary), "needs the built blip-captiond"))
    func aFrameLimitTooSmallForTheImageLimitIsRefusedAtStart() throws {
        let daemon = try DaemonProcess(executable: PackagePaths.fakeDaemon, rawArguments: ["--max-image-bytes", "\(40 << 20)", "--max-frame-bytes", "\(33 << 20)"])
        #expect(try daemon.waitForExit(timeout: 30) == 64)
        let log = daemon.log
        #expect(log.contains("cannot carry an image of --max-image-bytes"), "\(log)")
    }
}
