import BLIPTestSupport
import Foundation
import Testing

/// Every command without a daemon: one line that says so, naming the socket (and a unit only for
/// the units' sockets), exit status 2 as the README says.
extension CLITests {
    @Test(.enabled(if: built, "build blip-caption first (swift build)"),
          arguments: [["bench", "-n", "3"], ["caption"], ["health"], ["info"]])
    func noDaemonIsOneLineAndExitStatusTwo(command: [String]) throws {
        let socket = TemporaryDirectory().path + "/blip.sock"
        let image = Fixtures.root.appendingPathComponent("images/rocket.png").path
        let images = command[0] == "caption" || command[0] == "bench" ? [image] : []
        let r = try run(command + ["--socket", socket] + images)
        #expect(r.status == 2, "\(r.stderr)")
        let expected = "no daemon at \(socket): nothing listens there; check the path, or start one there (blip-captiond --socket \(socket))"
        #expect(r.stderr.contains(expected), "\(r.stderr)")
        #expect(!r.stderr.contains("blip-captiond.socket"), "not the default socket, so not its unit: \(r.stderr)")
        #expect(r.stdout.isEmpty, "\(r.stdout)")
    }
}
