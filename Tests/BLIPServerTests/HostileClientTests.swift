import BLIPProtocol
@testable import BLIPServer
import BLIPTestSupport
import Foundation
import Glibc
import Testing

/// Clients that misbehave — stop reading, get refused, send huge strings, half-close, hold half
/// frames, sit idle — cost the others nothing.
@Suite struct HostileClientTests {
    /// How long one 3-step caption takes for a well-behaved client, median of 5.
    static func captionTime(_ server: TestServer, client: RawClient, firstID: UInt64) throws -> Double {
        var times: [Double] = []
        for i in 0..<5 {
            let start = Date()
            try client.caption(firstID + UInt64(i))
            #expect(try client.receive()?.statusCode == .ok)
            times.append(Date().timeIntervalSince(start))
        }
        return times.sorted()[2]
    }

    @Test func aClientThatStopsReadingDelaysNoOneAndIsDisconnected() throws {
        let server = try TestServer(service: FakeService(stepTime: .milliseconds(2), concurrency: 2)) {
            $0.queueDepth = 64
            $0.maxQueuedBytes = 64 << 10
            $0.sendGracePeriod = .milliseconds(500)
            $0.watchdogInterval = .milliseconds(200)
        }
        let good = try server.connect()
        let alone = try Self.captionTime(server, client: good, firstID: 1)

        // The hostile client pipelines thousands of calls (about 2 MB of answers) and never reads.
        let hostile = try server.connect()
        var small: Int32 = 4096
        setsockopt(hostile.fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        // (Sends may fail once the daemon has disconnected it.)
        for id in 1...6000 { try? hostile.send(.request(callID: UInt64(id), method: .info, message: InfoRequest())) }
        for id in 6001...6020 { try? hostile.caption(UInt64(id)) }
        let pingsBefore = server.notifications.all.filter { $0 == "WATCHDOG=1" }.count
        let withHostile = try Self.captionTime(server, client: good, firstID: 100)
        // A writer blocked on the non-reading client would hold every caption for at least the
        // 500 ms send grace period; the margin below it allows for the event loop working through
        // the hostile client's 6,000 pipelined calls on a loaded 2-core CI machine (seen: +102 ms).
        let margin = 0.25
        #expect(withHostile < alone + margin, "a caption took \(withHostile) s beside a non-reading client, \(alone) s alone")
        Thread.sleep(forTimeInterval: 1.0)
        let pings = server.notifications.all.filter { $0 == "WATCHDOG=1" }.count - pingsBefore
        #expect(pings >= 5, "watchdog pings must keep their 100 ms period: \(pings) in ~1.2 s")
        let dropped = server.logLines.all.contains { $0.contains("client stopped reading") }
        #expect(dropped, "the non-reading client must be disconnected after the grace period")
        #expect(try Self.captionTime(server, client: good, firstID: 200) < alone + margin)
    }

    @Test func refusedPeersAreAnsweredThenClosedAndDoNotCountAgainstTheLimit() throws {
        let server = try TestServer { $0.allowedUIDs = [getuid() &+ 1]; $0.maxConnections = 1 }
        let peers = try (0..<3).map { _ in try server.connect() }
        for peer in peers { try peer.caption(1) }
        for peer in peers {
            let answer = try #require(try peer.receive())
            #expect(answer.callID == 1 && answer.statusCode == .permissionDenied, "got \(answer.statusCode)")
            #expect(try peer.receive() == nil, "a refused peer's connection must be closed")
        }
        #expect(server.service.record.withLock { $0.started } == 0)
    }

    @Test func clientStringsAreCutInAnswersAndLogs() throws {
        let server = try TestServer()
        let client = try server.connect()
        let method = String(repeating: "x", count: 8 << 20)
        try client.sendRaw(FrameEncoder().encode(Envelope(callID: 1, kind: .request, method: method).encoded()))
        let start = Date()
        let answer = try #require(try client.receive(timeout: 10))
        #expect(answer.statusCode == .unimplemented)
        #expect(answer.encoded().count < 4096, "an answer of \(answer.encoded().count) bytes")
        #expect(answer.responseStatus.message.contains("cut"))
        let longest = server.logLines.all.map(\.utf8.count).max() ?? 0
        #expect(longest < 4096, "a log line of \(longest) bytes")
        print("measured: 8 MiB method name answered in \(Date().timeIntervalSince(start)) s with \(answer.encoded().count) bytes; longest log line \(longest) bytes")
    }

    @Test func halfCloseStillGetsEveryAnswer() throws {
        let server = try TestServer()
        let client = try server.connect()
        for id in 1...3 { try client.caption(UInt64(id), steps: 20) }
        try client.send(.request(callID: 4, method: .healthCheck, message: HealthCheckRequest()))
        #expect(Glibc.shutdown(client.fd, Int32(SHUT_WR)) == 0)
        let answers = try client.receive(count: 4)
        for id in 1...4 { #expect(answers[UInt64(id)]?.statusCode == .ok, "call \(id)") }
        #expect(try client.receive() == nil, "the connection closes once every call is answered")
    }

    @Test func halfReceivedFramesPastTheBudgetAreRefused() throws {
        let server = try TestServer { $0.maxBufferedBytes = 100_000 }
        let a = try server.connect()
        try a.sendRaw(RawClient.prefix(80_000) + [UInt8](repeating: 0, count: 70_000))
        Thread.sleep(forTimeInterval: 0.1)
        let b = try server.connect()
        try b.sendRaw(RawClient.prefix(80_000) + [UInt8](repeating: 0, count: 50_000))
        let answer = try #require(try b.receive())
        #expect(answer.callID == 0 && answer.statusCode == .resourceExhausted, "got \(answer.statusCode)")
        #expect(answer.responseStatus.message.contains("--max-buffered-bytes"))
        #expect(try b.receive() == nil)
        // Health still answers on a fresh connection, and a's half frame is intact.
        let c = try server.connect()
        try c.send(.request(callID: 1, method: .healthCheck, message: HealthCheckRequest()))
        #expect(try c.receive()?.statusCode == .ok)
    }

    @Test func idleConnectionsCloseButBusyOnesDoNot() throws {
        let server = try TestServer { $0.idleTimeout = .milliseconds(200) }
        let idle = try server.connect()
        let busy = try server.connect()
        try busy.caption(1, steps: 100)  // ~0.5 s, longer than the idle timeout
        #expect(try idle.receive(timeout: 2) == nil, "an idle connection must close after --idle-timeout")
        #expect(try busy.receive(timeout: 2)?.statusCode == .ok)
    }
}
