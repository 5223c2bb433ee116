import BLIPProtocol
@testable import BLIPServer
import Foundation
import Testing

/// `maxBatch`: how many calls run at once, in arrival order, with the queue depth still bounding
/// calls waiting plus running.
@Suite struct BatchWorkerTests {
    @Test func upToMaxBatchCallsRunAtOnceTheRestWaitInOrder() throws {
        let server = try TestServer(service: FakeService(stepTime: .milliseconds(10))) {
            $0.maxBatch = 2
            $0.queueDepth = 3
        }
        let client = try server.connect()
        for id in 1...4 { try client.caption(UInt64(id), steps: 30) }  // ~300 ms each
        Thread.sleep(forTimeInterval: 0.1)
        // Two run at once, one waits; the fourth exceeded the depth of 3.
        #expect(server.service.record.withLock { $0.started } == 2)
        let responses = try client.receive(count: 4)
        #expect(responses[4]?.statusCode == .resourceExhausted)
        for id in 1...3 { #expect(responses[UInt64(id)]?.statusCode == .ok) }
        #expect(server.service.record.withLock { $0.completed } == 3)
        #expect(server.stop() == .shutdownRequested)
    }

    @Test func oneAtATimeByDefault() throws {
        let server = try TestServer(service: FakeService(stepTime: .milliseconds(10))) { $0.queueDepth = 4 }
        let client = try server.connect()
        for id in 1...3 { try client.caption(UInt64(id), steps: 20) }
        Thread.sleep(forTimeInterval: 0.08)
        #expect(server.service.record.withLock { $0.started } == 1)
        let responses = try client.receive(count: 3)
        for id in 1...3 { #expect(responses[UInt64(id)]?.statusCode == .ok) }
        #expect(server.stop() == .shutdownRequested)
    }

    @Test func workersNeverExceedTheQueueDepth() {
        let scheduler = Scheduler(service: FakeService(), capacity: 2, workers: 8)
        #expect(scheduler.workers == 2)
    }
}
