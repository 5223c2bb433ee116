import BLIPProtocol
import BLIPServer
import BLIPTestSupport
import Foundation
import Testing

/// Calls over a real socket against a fake service: concurrency, ordering, per-call errors.
@Suite struct CallTests {
    @Test func healthWhileServing() throws {
        let server = try TestServer()
        let client = try server.connect()
        for (id, service, expected) in [(1, "", HealthCheckResponse.ServingStatus.serving),
                                        (2, "blip.v1.Captioner", .serving),
                                        (3, "blip.v1.Health", .serving),
                                        (4, "grpc.health.v1.Health", .serviceUnknown)] {
            try client.send(.request(callID: UInt64(id), method: .healthCheck, message: HealthCheckRequest(service: service)))
            let response = try #require(try client.receive())
            #expect(response.callID == UInt64(id))
            #expect(response.kind == .response)
            #expect(response.method == RPCMethod.healthCheck.rawValue)
            #expect(response.statusCode == .ok)
            #expect(try HealthCheckResponse(decoding: response.payload).status == expected)
        }
    }

    @Test func healthAnsweredAtOnceWhileQueueIsBusy() throws {
        let server = try TestServer { $0.queueDepth = 2 }
        let client = try server.connect()
        try client.caption(1, steps: 60)  // ~300 ms
        try client.caption(2, steps: 60)
        try client.send(.request(callID: 3, method: .healthCheck, message: HealthCheckRequest()))
        let first = try #require(try client.receive())
        #expect(first.callID == 3)
        #expect(try HealthCheckResponse(decoding: first.payload).status == .serving)
        let rest = try client.receive(count: 2)
        #expect(rest[1]?.statusCode == .ok && rest[2]?.statusCode == .ok)
    }

    @Test func concurrentCallsOnOneConnection() throws {
        let server = try TestServer()
        let client = try server.connect()
        for id in 1...5 { try client.caption(UInt64(id), prompt: "call \(id)") }
        let responses = try client.receive(count: 5)
        #expect(responses.count == 5)
        for id in 1...5 {
            let response = try #require(responses[UInt64(id)])
            #expect(response.statusCode == .ok)
            let caption = try response.caption()
            #expect(caption.candidates.first?.text == "call \(id) of 4 bytes")
            #expect(caption.modelID == "fake/blip")
        }
        #expect(server.service.record.withLock { $0.completed } == 5)
    }

    @Test func framesSplitIntoSingleBytesAndJoinedInOneWrite() throws {
        let server = try TestServer()
        let client = try server.connect()
        let encoder = FrameEncoder()
        var bytes: [UInt8] = []
        try encoder.append(Envelope.request(callID: 1, method: .healthCheck, message: HealthCheckRequest()).encoded(), to: &bytes)
        try encoder.append(Envelope.request(callID: 2, method: .info, message: InfoRequest()).encoded(), to: &bytes)
        for byte in bytes { try client.sendRaw([byte]) }
        try client.sendRaw(bytes.map { $0 })  // the same two frames again, in one write
        let first = try client.receive(count: 2)
        let second = try client.receive(count: 2)
        for responses in [first, second] {
            #expect(responses[1]?.statusCode == .ok && responses[1]?.method == RPCMethod.healthCheck.rawValue)
            #expect(responses[2]?.statusCode == .ok && responses[2]?.method == RPCMethod.info.rawValue)
        }
    }

    @Test func repliesComeOutOfOrder() throws {
        let server = try TestServer()
        let client = try server.connect()
        try client.caption(1, steps: 40)  // ~200 ms in the worker
        try client.send(.request(callID: 2, method: .info, message: InfoRequest()))
        let first = try #require(try client.receive())
        #expect(first.callID == 2)
        #expect(first.statusCode == .ok)
        let second = try #require(try client.receive())
        #expect(second.callID == 1)
        #expect(second.statusCode == .ok)
    }

    @Test func concurrentCallsOnManyConnections() throws {
        let server = try TestServer { $0.queueDepth = 48 }
        let clients = try (0..<16).map { _ in try server.connect() }
        for (index, client) in clients.enumerated() {
            for call in 1...3 { try client.caption(UInt64(call), prompt: "client \(index) call \(call)") }
        }
        for (index, client) in clients.enumerated() {
            let responses = try client.receive(count: 3)
            for call in 1...3 {
                let response = try #require(responses[UInt64(call)])
                #expect(response.statusCode == .ok)
                #expect(try response.caption().candidates.first?.text == "client \(index) call \(call) of 4 bytes")
            }
        }
        #expect(server.service.record.withLock { $0.completed } == 48)
    }

    @Test func deadlineExceededWhileQueued() throws {
        let server = try TestServer()
        let client = try server.connect()
        try client.caption(1, steps: 100)  // ~500 ms
        try client.caption(2, timeout: .milliseconds(50))
        // Call 2 expires in the queue, long before call 1 finishes, and never runs.
        let first = try #require(try client.receive())
        #expect(first.callID == 2)
        #expect(first.statusCode == .deadlineExceeded)
        let second = try #require(try client.receive())
        #expect(second.callID == 1 && second.statusCode == .ok)
        #expect(server.service.record.withLock { $0.started } == 1)
    }

    @Test func deadlineExceededWhileRunning() throws {
        let server = try TestServer()
        let client = try server.connect()
        let sent = ContinuousClock.now
        try client.caption(1, steps: 400, timeout: .milliseconds(60))  // would take ~2 s
        let response = try #require(try client.receive())
        #expect(response.callID == 1)
        #expect(response.statusCode == .deadlineExceeded)
        #expect(response.payload.isEmpty)
        #expect(ContinuousClock.now - sent < .seconds(1))
        #expect(server.service.record.withLock { $0.stoppedByCheckpoint } == [.deadlineExceeded])
    }

    @Test func cancelRunningCall() throws {
        let server = try TestServer()
        let client = try server.connect()
        try client.caption(7, steps: 400)
        Thread.sleep(forTimeInterval: 0.05)
        try client.send(.cancel(callID: 7))
        let response = try #require(try client.receive(timeout: 1))
        #expect(response.callID == 7)
        #expect(response.statusCode == .cancelled)
        #expect(server.service.record.withLock { $0.stoppedByCheckpoint } == [.cancelled])
    }

    @Test func cancelQueuedCallAndIgnoreUnknownIDs() throws {
        let server = try TestServer()
        let client = try server.connect()
        try client.caption(1, steps: 60)
        try client.caption(2, steps: 60)
        try client.send(.cancel(callID: 2))
        try client.send(.cancel(callID: 99))  // unknown: ignored
        let first = try #require(try client.receive())
        #expect(first.callID == 2 && first.statusCode == .cancelled)
        let second = try #require(try client.receive())
        #expect(second.callID == 1 && second.statusCode == .ok)
        #expect(server.service.record.withLock { $0.started } == 1)
    }

    @Test func closedConnectionStopsItsWork() throws {
        let server = try TestServer()
        do {
            let client = try server.connect()
            try client.caption(1, steps: 400)
            Thread.sleep(forTimeInterval: 0.05)
        }  // client closes here
        let deadline = ContinuousClock.now + .seconds(2)
        while server.service.record.withLock({ $0.stoppedByCheckpoint.isEmpty }), ContinuousClock.now < deadline {
            Thread.sleep(forTimeInterval: 0.01)
        }
        #expect(server.service.record.withLock { $0.stoppedByCheckpoint } == [.cancelled])
        #expect(server.service.record.withLock { $0.completed } == 0)
    }

    @Test func queueFullIsResourceExhaustedAtOnce() throws {
        let server = try TestServer { $0.queueDepth = 2 }
        let client = try server.connect()
        try client.caption(1, steps: 60)
        try client.caption(2, steps: 60)
        try client.caption(3, steps: 60)
        let first = try #require(try client.receive(timeout: 2))
        #expect(first.callID == 3)
        #expect(first.statusCode == .resourceExhausted)
        #expect(first.responseStatus.message.contains("queue is full"))
        let rest = try client.receive(count: 2)
        #expect(rest[1]?.statusCode == .ok && rest[2]?.statusCode == .ok)
    }

    @Test func unknownMethodIsUnimplementedAndConnectionStays() throws {
        let server = try TestServer()
        let client = try server.connect()
        try client.send(Envelope(callID: 5, kind: .request, method: "/blip.v1.Captioner/Paint"))
        let response = try #require(try client.receive())
        #expect(response.callID == 5)
        #expect(response.statusCode == .unimplemented)
        #expect(response.method == "/blip.v1.Captioner/Paint")
        try client.send(.request(callID: 6, method: .healthCheck, message: HealthCheckRequest()))
        #expect(try client.receive()?.statusCode == .ok)
    }

    @Test func undecodablePayloadIsInvalidArgument() throws {
        let server = try TestServer()
        let client = try server.connect()
        try client.send(Envelope(callID: 3, kind: .request, method: RPCMethod.caption.rawValue, payload: [0xff, 0xff, 0xff]))
        let response = try #require(try client.receive())
        #expect(response.callID == 3)
        #expect(response.statusCode == .invalidArgument)
        try client.caption(4)
        #expect(try client.receive()?.statusCode == .ok)
    }

    @Test func duplicateCallIDIsAlreadyExists() throws {
        let server = try TestServer()
        let client = try server.connect()
        try client.caption(9, steps: 40, prompt: "first")
        try client.caption(9, prompt: "second")
        let first = try #require(try client.receive())
        #expect(first.callID == 9 && first.statusCode == .alreadyExists)
        let second = try #require(try client.receive())
        #expect(second.callID == 9 && second.statusCode == .ok)
        #expect(try second.caption().candidates.first?.text == "first of 4 bytes")
        // Once answered, the id is free again.
        try client.caption(9, prompt: "third")
        #expect(try client.receive()?.caption().candidates.first?.text == "third of 4 bytes")
    }

    @Test(arguments: [
        [UInt8]([0, 0, 0, 3, 0xff, 0xfe, 0xfd]),  // not an Envelope
        [UInt8]([0, 0, 0, 0]),                    // empty envelope: no kind
        try FrameEncoder().encode(Envelope(callID: 1, kind: .response).encoded()),  // clients never send responses
        try FrameEncoder().encode(Envelope(callID: 0, kind: .request, method: RPCMethod.info.rawValue).encoded()),
    ])
    func badEnvelopeGetsCallIDZeroThenClose(frame: [UInt8]) throws {
        let server = try TestServer()
        let client = try server.connect()
        try client.sendRaw(frame)
        let response = try #require(try client.receive())
        #expect(response.callID == 0)
        #expect(response.statusCode == .invalidArgument)
        #expect(try client.receive() == nil)
        // The server keeps serving others.
        let other = try server.connect()
        try other.send(.request(callID: 1, method: .healthCheck, message: HealthCheckRequest()))
        #expect(try other.receive()?.statusCode == .ok)
    }

    @Test func oversizedLengthIsRefusedFromThePrefixAlone() throws {
        let server = try TestServer { $0.maxFrameBytes = 1 << 20 }
        let client = try server.connect()
        // Announce 4 GiB - 1 and send nothing more: the server must answer without waiting for
        // (or allocating) the payload.
        try client.sendRaw([0xff, 0xff, 0xff, 0xff])
        let response = try #require(try client.receive(timeout: 2))
        #expect(response.callID == 0)
        #expect(response.statusCode == .resourceExhausted)
        #expect(response.responseStatus.message.contains("4294967295"))
        #expect(try client.receive() == nil)
    }

    @Test func infoReportsLimitsAndCounters() throws {
        let server = try TestServer { $0.queueDepth = 5; $0.maxFrameBytes = 123_456 }
        let client = try server.connect()
        for id in 1...3 { try client.caption(UInt64(id)) }
        _ = try client.receive(count: 3)
        try client.send(Envelope(callID: 4, kind: .request, method: "/nope"))
        _ = try client.receive()
        try client.send(.request(callID: 5, method: .info, message: InfoRequest()))
        let response = try #require(try client.receive())
        let info = try InfoResponse(decoding: response.payload)
        #expect(info.modelID == "fake/blip")
        #expect(info.limits == .init(maxFrameBytes: 123_456, maxImageBytes: 1 << 20, maxPixels: 1 << 22,
                                     maxTokens: 512, maxBeams: 8, maxQueueDepth: 5, maxTextBytes: 512, maxBadWords: 64))
        #expect(info.counters.requestsByStatus == [.ok: 3, .unimplemented: 1])
        #expect(info.counters.queueDepth == 0)
        #expect(info.counters.uptimeMicroseconds > 0)
        // Three ~15 ms captions: p50 ≤ p95 ≤ p99, all at least the decoding time.
        #expect(info.counters.latencyP50Microseconds >= 15_000)
        #expect(info.counters.latencyP50Microseconds <= info.counters.latencyP95Microseconds)
        #expect(info.counters.latencyP95Microseconds <= info.counters.latencyP99Microseconds)
    }

    @Test func peersOutsideTheAllowListArePermissionDenied() throws {
        let server = try TestServer { $0.allowedUIDs = [getuid() &+ 1]; $0.allowedGIDs = [getgid() &+ 1] }
        let client = try server.connect()
        try client.caption(1)
        let response = try #require(try client.receive())
        #expect(response.callID == 1 && response.statusCode == .permissionDenied)
        #expect(server.service.record.withLock { $0.started } == 0)

        let allowed = try TestServer { $0.allowedUIDs = [getuid()] }
        let other = try allowed.connect()
        try other.caption(1)
        #expect(try other.receive()?.statusCode == .ok)
    }
}
