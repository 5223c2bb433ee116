import BLIPProtocol
@testable import BLIPServer
import BLIPTestSupport
import Foundation
import Testing

/// The server admits at most `queueDepth` calls in flight and submits them to the engine at once,
/// in arrival order; how many run together is the engine's business.
@Suite struct AdmissionTests {
    @Test func theQueueDepthBoundsCallsInFlightAndTheEngineSeesThemAtOnce() throws {
        let server = try TestServer(service: FakeService(stepTime: .milliseconds(10), concurrency: 2)) {
            $0.queueDepth = 3
        }
        let client = try server.connect()
        for id in 1...4 { try client.caption(UInt64(id), steps: 30) }  // ~300 ms each
        // The engine runs two at once, one waits in the engine; the fourth exceeded the depth of 3.
        let deadline = Date(timeIntervalSinceNow: 2)
        while server.service.record.withLock({ $0.started }) < 2, Date() < deadline { usleep(5_000) }
        #expect(server.service.record.withLock { $0.started } == 2)
        let responses = try client.receive(count: 4)
        #expect(responses[4]?.statusCode == .resourceExhausted)
        for id in 1...3 { #expect(responses[UInt64(id)]?.statusCode == .ok) }
        #expect(server.service.record.withLock { $0.completed } == 3)
        #expect(server.stop() == .shutdownRequested)
    }

    @Test func aCallTheEngineRefusesIsAnsweredAtOnceAndFreesItsPlace() throws {
        let server = try TestServer(service: FakeService()) { $0.queueDepth = 1 }
        let client = try server.connect()
        try client.caption(1, prompt: "refuse")
        try client.caption(2)
        let responses = try client.receive(count: 2)
        #expect(responses[1]?.statusCode == .invalidArgument)
        #expect(responses[2]?.statusCode == .ok)
        #expect(server.stop() == .shutdownRequested)
    }
}
