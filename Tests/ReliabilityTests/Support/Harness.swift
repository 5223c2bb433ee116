import BLIPProtocol
import BLIPTestSupport
import Foundation
import Testing

/// Runs bad-input cases one after another against one daemon, checking between cases that a
/// second, long-lived client is still served, and measuring the daemon's fds and RSS around them.
final class Harness {
    let daemon: DaemonProcess
    /// The bystander: a client connected throughout, health-checked after every case.
    let bystander: RawClient
    private(set) var fdsBefore = 0
    private(set) var rssBefore = 0
    /// One line per case: `name | code | message`, printed at the end for docs/reliability.md.
    private(set) var rows: [String] = []

    init(arguments: [String] = []) throws {
        daemon = try DaemonProcess(arguments: arguments)
        bystander = try RawClient(path: daemon.socketPath)
        // One good caption first, so first-touch allocations are not counted as growth.
        let warm = try bystander.caption(CaptionRequest(image: .init(data: try Paths.image("rocket.png"))))
        #expect(warm.statusCode == .ok)
        fdsBefore = daemon.fdCount
        rssBefore = daemon.rssKiB
    }

    /// A fresh connection to the daemon.
    func connect() throws -> RawClient { try RawClient(path: daemon.socketPath) }

    /// Records a case's outcome, checks the code and that `message` contains `messageContains`,
    /// then health-checks the bystander.
    func check(_ name: String, _ response: Envelope?, code: StatusCode, callID: UInt64? = nil,
               messageContains: String = "", sourceLocation: SourceLocation = #_sourceLocation) {
        let got = response.map { "\($0.statusCode.name) (call \($0.callID)) \($0.statusMessage)" } ?? "no response"
        rows.append("\(name) | \(got)")
        #expect(response?.statusCode == code, "\(name): \(got)", sourceLocation: sourceLocation)
        if let callID { #expect(response?.callID == callID, "\(name): \(got)", sourceLocation: sourceLocation) }
        if !messageContains.isEmpty {
            #expect(response?.statusMessage.contains(messageContains) == true,
                    "\(name): \(got) should mention \(messageContains)", sourceLocation: sourceLocation)
        }
        bystanderIsServed(after: name, sourceLocation: sourceLocation)
    }

    /// Records an observation that is not a status (e.g. "connection closed").
    func note(_ name: String, _ outcome: String) { rows.append("\(name) | \(outcome)") }

    func bystanderIsServed(after name: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let status = try? bystander.health()
        #expect(status == .serving, "bystander not served after \(name)", sourceLocation: sourceLocation)
    }

    /// Checks fds return to the baseline and RSS grew by at most `rssBoundKiB`; prints the table.
    func finish(_ title: String, rssBoundKiB: Int = 32 << 10, sourceLocation: SourceLocation = #_sourceLocation) {
        let fdsAfter = daemon.waitForFDs(atMost: fdsBefore)
        let rssAfter = daemon.rssKiB
        print("== \(title): \(rows.count) cases; fds \(fdsBefore) -> \(fdsAfter); RSS \(rssBefore) -> \(rssAfter) KiB")
        for row in rows { print("   \(row)") }
        #expect(fdsAfter == fdsBefore, "\(title): fds \(fdsBefore) -> \(fdsAfter)", sourceLocation: sourceLocation)
        // Under a sanitizer (scripts/sanitizers.sh) freed memory sits in quarantine: no RSS bound.
        if ProcessInfo.processInfo.environment["BLIP_SANITIZER"] == nil {
            #expect(rssAfter - rssBefore <= rssBoundKiB, "\(title): RSS \(rssBefore) -> \(rssAfter) KiB", sourceLocation: sourceLocation)
        }
    }
}
