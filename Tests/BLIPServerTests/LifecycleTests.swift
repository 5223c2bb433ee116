import BLIPProtocol
@testable import BLIPServer
import BLIPTestSupport
import Foundation
import Testing

/// Shutdown, idle exit, sd_notify and the watchdog.
@Suite struct LifecycleTests {
    @Test func shutdownLetsCallsInFlightFinish() throws {
        let server = try TestServer { $0.gracePeriod = .seconds(5) }
        let client = try server.connect()
        try client.caption(1, steps: 40)  // ~200 ms
        Thread.sleep(forTimeInterval: 0.03)
        server.server.shutdown()
        // Draining: health says NOT_SERVING, new captions are UNAVAILABLE, call 1 completes.
        try client.send(.request(callID: 2, method: .healthCheck, message: HealthCheckRequest()))
        try client.caption(3)
        let responses = try client.receive(count: 3)
        #expect(try HealthCheckResponse(decoding: #require(responses[2]).payload).status == .notServing)
        #expect(responses[3]?.statusCode == .unavailable)
        #expect(responses[1]?.statusCode == .ok)
        #expect(server.waitForExit() == .shutdownRequested)
        #expect(try client.receive() == nil)
        #expect(!FileManager.default.fileExists(atPath: server.path))
        let notes = server.notifications.all
        #expect(notes.first?.hasPrefix("READY=1\nSTATUS=serving") == true)
        #expect(notes.last?.hasPrefix("STOPPING=1") == true)
    }

    @Test func callsPastTheGracePeriodAreUnavailable() throws {
        let server = try TestServer { $0.gracePeriod = .milliseconds(100); $0.queueDepth = 4 }
        let client = try server.connect()
        try client.caption(1, steps: 400)  // ~2 s
        try client.caption(2, steps: 400)
        Thread.sleep(forTimeInterval: 0.03)
        let start = ContinuousClock.now
        #expect(server.stop() == .shutdownRequested)
        #expect(ContinuousClock.now - start < .seconds(2))
        let responses = try client.receive(count: 2)
        #expect(responses[1]?.statusCode == .unavailable)
        #expect(responses[2]?.statusCode == .unavailable)
    }

    @Test func idleExit() throws {
        let server = try TestServer { $0.idleExit = .milliseconds(300) }
        do {
            let client = try server.connect()
            try client.caption(1)
            #expect(try client.receive()?.statusCode == .ok)
        }
        let start = ContinuousClock.now
        #expect(server.waitForExit(timeout: 5) == .idle)
        #expect(ContinuousClock.now - start >= .milliseconds(250))
        #expect(server.notifications.all.last?.hasPrefix("STOPPING=1") == true)
    }

    @Test func watchdogPingsOnlyWhileTheWorkerMakesProgress() throws {
        let server = try TestServer(service: FakeService(wedgeTime: .milliseconds(1500))) {
            $0.watchdogInterval = .milliseconds(200)
        }
        Thread.sleep(forTimeInterval: 0.35)
        let pingsIdle = server.notifications.all.filter { $0 == "WATCHDOG=1" }.count
        #expect(pingsIdle >= 2)  // every 100 ms while idle

        let client = try server.connect()
        try client.caption(1, prompt: "wedge")  // 1.5 s without a checkpoint
        Thread.sleep(forTimeInterval: 0.4)      // past the watchdog interval: pings stop
        let before = server.notifications.all.filter { $0 == "WATCHDOG=1" }.count
        Thread.sleep(forTimeInterval: 0.4)
        let during = server.notifications.all.filter { $0 == "WATCHDOG=1" }.count
        #expect(during == before)
        #expect(try client.receive()?.statusCode == .ok)
        #expect(server.logLines.all.contains { $0.contains("made no progress") })
        Thread.sleep(forTimeInterval: 0.3)
        let after = server.notifications.all.filter { $0 == "WATCHDOG=1" }.count
        #expect(after > during)
    }

    @Test func statusLinesAreRateLimited() throws {
        let server = try TestServer { $0.statusInterval = .milliseconds(200) }
        let client = try server.connect()
        for id in 1...20 {
            try client.caption(UInt64(id), steps: 1)
            _ = try client.receive()
        }
        Thread.sleep(forTimeInterval: 0.3)
        server.stop()
        let statuses = server.notifications.all.filter { $0.hasPrefix("STATUS=") }
        #expect(!statuses.isEmpty)
        #expect(statuses.last?.contains("20 captions served") == true)
        #expect(statuses.count < 10)  // 20 calls, far fewer status lines
    }

    @Test func replacedServiceServesLaterCallsWhileTheRunningOneFinishesOnTheOld() throws {
        let server = try TestServer()
        let client = try server.connect()
        try client.caption(1, steps: 40)  // submitted to the old service: finishes there
        Thread.sleep(forTimeInterval: 0.05)
        let reloaded = FakeService(modelID: "fake/reloaded")
        server.server.replaceService(reloaded)
        try client.caption(2)             // after the reload: runs on the new one
        let responses = try client.receive(count: 2)
        #expect(try responses[1]?.caption().modelID == "fake/blip")
        #expect(try responses[2]?.caption().modelID == "fake/reloaded")
        try client.send(.request(callID: 3, method: .info, message: InfoRequest()))
        #expect(try InfoResponse(decoding: #require(try client.receive()).payload).modelID == "fake/reloaded")
        #expect(server.service.record.withLock { $0.completed } == 1)
        #expect(reloaded.record.withLock { $0.completed } == 1)
    }

    @Test func percentilesAreNearestRank() {
        let values: [UInt64] = Array(1...100)
        #expect(ServerStatistics.percentile(0.50, of: values) == 50)
        #expect(ServerStatistics.percentile(0.95, of: values) == 95)
        #expect(ServerStatistics.percentile(0.99, of: values) == 99)
        #expect(ServerStatistics.percentile(0.99, of: [7]) == 7)
        #expect(ServerStatistics.percentile(0.5, of: []) == 0)
    }
}
