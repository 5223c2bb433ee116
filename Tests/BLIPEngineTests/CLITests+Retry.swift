import BLIPTestSupport
import Foundation
import Testing

/// `blip-caption caption` retries a daemon whose queue is full (`RESOURCE_EXHAUSTED`), as the
/// library does only when asked. The hidden test service takes 5 ms per "token", so with
/// `--queue-depth 1` and two images in flight the second is refused while the first runs.
extension CLITests {
    @Test(.enabled(if: daemonBuilt, "build blip-caption and blip-captiond first (swift build --build-tests)"))
    func aFullQueueIsRetriedUnlessRetriesIsZero() throws {
        let directory = TemporaryDirectory()
        let daemon = try DaemonProcess(executable: PackagePaths.fakeDaemon, rawArguments: ["--socket", directory.path + "/blip.sock", "--queue-depth", "1"],
                                       in: directory, wait: .serving)
        let images = ["rocket.png", "astronaut_q90_420.jpg"].map { Fixtures.root.appendingPathComponent("images/\($0)").path }
        let common = ["caption", "--socket", daemon.socketPath, "--concurrency", "2", "--max-new-tokens", "60", "--json"]

        let once = try run(common + ["--retries", "0"] + images)
        #expect(once.status == 1, "without retries the refused image fails: \(once.stderr)")
        #expect(once.stderr.contains("RESOURCE_EXHAUSTED"), "\(once.stderr)")

        let retried = try run(common + ["--retries", "8"] + images)
        #expect(retried.status == 0, "\(retried.stderr)")
        #expect(try jsonLines(retried).compactMap { $0["image"] as? String } == images)
    }
}
