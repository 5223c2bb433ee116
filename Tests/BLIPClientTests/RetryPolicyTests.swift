@testable import BLIPClient
import BLIPProtocol
import BLIPTestSupport
import Foundation
import Testing

/// ``RetryPolicy``: which failures are retried, the back-off's bounds, and the client retrying a
/// busy fake daemon within the call's deadline.
@Suite struct RetryPolicyTests {
    let jpeg: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0, 0x00]

    /// A fake daemon that answers the first `busy` caption calls with `code`, then OK.
    func busyServer(busy: Int, code: StatusCode = .resourceExhausted) throws -> FakeServer {
        let count = LockedState(0)
        return try FakeServer { envelope, peer in
            guard envelope.kind == .request else { return }
            let n = count.withLock { n in n += 1; return n }
            if n <= busy {
                peer.send(.failure(callID: envelope.callID, method: envelope.method, error: RPCError(code: code, message: "the caption queue is full")))
            } else {
                peer.send(.response(to: envelope, message: CaptionResponse(modelID: "after \(n - 1) refusals")))
            }
        }
    }

    @Test func offByDefault() async throws {
        let server = try busyServer(busy: 1)
        defer { server.stop() }
        let client = CaptionClient(socketPath: server.path)
        #expect(client.retryPolicy == .none)
        let error = await #expect(throws: CaptionClientError.self) { try await client.caption(image: jpeg, timeout: .seconds(3)) }
        #expect(error?.code == .resourceExhausted)
        #expect(server.received.filter { $0.kind == .request }.count == 1)
    }

    @Test(arguments: [StatusCode.resourceExhausted, .unavailable])
    func retriesBusyAndRestartingDaemons(code: StatusCode) async throws {
        let server = try busyServer(busy: 2, code: code)
        defer { server.stop() }
        let policy = RetryPolicy(maxAttempts: 3, initialBackoff: .milliseconds(10), maxBackoff: .milliseconds(50))
        let client = CaptionClient(socketPath: server.path, retryPolicy: policy)
        let reply = try await client.caption(image: jpeg, timeout: .seconds(60))
        #expect(reply.modelID == "after 2 refusals")
        #expect(server.received.filter { $0.kind == .request }.count == 3)
        await client.close()
    }

    @Test func givesUpAfterMaxAttemptsWithTheDaemonsError() async throws {
        let server = try busyServer(busy: 10)
        defer { server.stop() }
        let client = CaptionClient(socketPath: server.path, retryPolicy: RetryPolicy(maxAttempts: 2, initialBackoff: .milliseconds(5)))
        let error = await #expect(throws: CaptionClientError.self) { try await client.caption(image: jpeg, timeout: .seconds(60)) }
        #expect(error == .rpc(RPCError(code: .resourceExhausted, message: "the caption queue is full")))
        #expect(server.received.filter { $0.kind == .request }.count == 2)
    }

    @Test func otherStatusesAreNotRetried() async throws {
        let server = try busyServer(busy: 10, code: .invalidArgument)
        defer { server.stop() }
        let client = CaptionClient(socketPath: server.path, retryPolicy: RetryPolicy(maxAttempts: 5, initialBackoff: .milliseconds(5)))
        let error = await #expect(throws: CaptionClientError.self) { try await client.caption(image: jpeg, timeout: .seconds(5)) }
        #expect(error?.code == .invalidArgument)
        #expect(server.received.filter { $0.kind == .request }.count == 1)
    }

    /// The timeout bounds every attempt and wait: with a 500 ms deadline the deadline, not the 100
    /// attempts the policy allows, ends the retries, no attempt reaches the daemon after it (50 ms
    /// allowed for the socket), and the daemon's own error is reported, not DEADLINE_EXCEEDED.
    /// (Full jitter makes the waits anything in 0…200 ms, so the count itself is not bounded.)
    @Test func noRetryPastTheDeadline() async throws {
        let arrivals = LockedState<[ContinuousClock.Instant]>([])
        let server = try FakeServer { envelope, peer in
            guard envelope.kind == .request else { return }
            arrivals.withLock { $0.append(.now) }
            peer.send(.failure(callID: envelope.callID, method: envelope.method, error: RPCError(code: .resourceExhausted, message: "the caption queue is full")))
        }
        defer { server.stop() }
        let policy = RetryPolicy(maxAttempts: 100, initialBackoff: .milliseconds(200), maxBackoff: .milliseconds(200), multiplier: 1)
        let client = CaptionClient(socketPath: server.path, retryPolicy: policy)
        let deadline = ContinuousClock.now + .milliseconds(500)
        let error = await #expect(throws: CaptionClientError.self) { try await client.caption(image: jpeg, timeout: .milliseconds(500)) }
        #expect(error?.code == .resourceExhausted)
        let times = arrivals.withLock { $0 }
        #expect((1..<100).contains(times.count), "\(times.count) attempts")
        #expect(times.allSatisfy { $0 < deadline + .milliseconds(50) }, "an attempt reached the daemon after the deadline")
    }

    @Test func whichFailuresAreRetried() {
        let policy = RetryPolicy(maxAttempts: 3)
        #expect(policy.shouldRetry(.rpc(RPCError(code: .resourceExhausted, message: "")), attempt: 1))
        #expect(policy.shouldRetry(.rpc(RPCError(code: .unavailable, message: "")), attempt: 2))
        #expect(!policy.shouldRetry(.rpc(RPCError(code: .unavailable, message: "")), attempt: 3), "the third attempt was the last")
        #expect(policy.shouldRetry(.connectionLost("the daemon restarted"), attempt: 1))
        #expect(!policy.shouldRetry(.noDaemon(path: "/x"), attempt: 1))
        #expect(!policy.shouldRetry(.permissionDenied(path: "/x"), attempt: 1))
        #expect(!policy.shouldRetry(.deadlineExceeded, attempt: 1))
        #expect(!policy.shouldRetry(.rpc(RPCError(code: .invalidArgument, message: "")), attempt: 1))
        #expect(!RetryPolicy.none.shouldRetry(.rpc(RPCError(code: .unavailable, message: "")), attempt: 1))
    }

    /// Exponential ceilings, capped; every wait within 0...ceiling and not all the same (jitter).
    @Test func backoffGrowsExponentiallyWithFullJitter() {
        let policy = RetryPolicy(maxAttempts: 10, initialBackoff: .milliseconds(100), maxBackoff: .seconds(1), multiplier: 2)
        #expect((1...6).map { policy.backoffCeiling(after: $0) }
                == [.milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800), .seconds(1), .seconds(1)])
        var random = SystemRandomNumberGenerator()
        let waits = (0..<200).map { _ in policy.backoff(after: 3, using: &random) }
        #expect(waits.allSatisfy { $0 >= .zero && $0 <= .milliseconds(400) })
        #expect(Set(waits).count > 100, "jittered waits differ")
        #expect(waits.contains { $0 < .milliseconds(200) } && waits.contains { $0 > .milliseconds(200) }, "spread over the whole range")
    }
}
