@testable import BLIPClient
import BLIPProtocol
import BLIPTestSupport
import Foundation
import Testing

/// The client against a fake daemon on a temporary socket: call matching, statuses, transport
/// failures, deadlines and cancellation.
@Suite struct CaptionClientTests {
    let jpeg: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0, 0x00]

    @Test func concurrentCallsMatchOutOfOrderReplies() async throws {
        // Holds the three requests, then answers them last-first; each answer names its prompt.
        let held = NSLock()
        nonisolated(unsafe) var waiting: [Envelope] = []
        let server = try FakeServer { envelope, peer in
            guard envelope.kind == .request else { return }
            let batch: [Envelope] = held.withLock {
                waiting.append(envelope)
                return waiting.count == 3 ? waiting.reversed() : []
            }
            for request in batch {
                let prompt = try! CaptionRequest(decoding: request.payload).prompt ?? ""
                peer.send(.response(to: request, message: CaptionResponse(modelID: "for \(prompt)")))
            }
        }
        defer { server.stop() }
        let client = CaptionClient(socketPath: server.path)

        async let a = client.caption(image: jpeg, prompt: "a", timeout: .seconds(5))
        async let b = client.caption(image: jpeg, prompt: "b", timeout: .seconds(5))
        async let c = client.caption(image: jpeg, prompt: "c", timeout: .seconds(5))
        let models = try await [a.modelID, b.modelID, c.modelID]

        #expect(models == ["for a", "for b", "for c"])
        #expect(server.connections == 1)
        let ids = server.received.map(\.callID)
        #expect(Set(ids).count == 3 && !ids.contains(0))
        #expect(server.received.allSatisfy { $0.method == RPCMethod.caption.rawValue && $0.timeout == .seconds(5) })
        await client.close()
    }

    @Test func manyConcurrentCallsAndALargeImageShareOneConnection() async throws {
        // The reply names the image's size, so a torn or misrouted frame cannot pass.
        let server = try FakeServer { envelope, peer in
            if envelope.method == RPCMethod.caption.rawValue {
                let size = try! CaptionRequest(decoding: envelope.payload).image.data.count
                peer.send(.response(to: envelope, message: CaptionResponse(modelID: "\(size)")))
            } else {
                peer.send(.response(to: envelope, message: HealthCheckResponse(status: .serving)))
            }
        }
        defer { server.stop() }
        let client = CaptionClient(socketPath: server.path)
        let large = [UInt8](repeating: 0xAB, count: 12 << 20)
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask { try await client.caption(image: large, timeout: .seconds(20)).modelID == "\(12 << 20)" }
            for _ in 0..<100 {
                group.addTask { try await client.health(timeout: .seconds(20)) == .serving }
            }
            for try await ok in group { #expect(ok) }
        }
        #expect(server.connections == 1)
        #expect(Set(server.received.map(\.callID)).count == 101)
    }

    @Test func requestCarriesEveryArgument() async throws {
        let server = try FakeServer { envelope, peer in
            peer.send(.response(to: envelope, message: CaptionResponse(candidates: [.init(text: "a dog", tokenIDs: [30522, 1037, 102], score: -1.5)])))
        }
        defer { server.stop() }
        let client = CaptionClient(socketPath: server.path)
        var options = DecodingOptions()
        options.numBeams = 1
        let response = try await client.caption(image: jpeg, format: .jpeg, prompt: "a picture of", options: options,
                                                applyEXIFOrientation: false, timeout: .seconds(3))
        #expect(response.candidates == [.init(text: "a dog", tokenIDs: [30522, 1037, 102], score: -1.5)])
        let request = try CaptionRequest(decoding: try #require(server.received.first).payload)
        #expect(request == CaptionRequest(image: .init(data: jpeg, format: .jpeg, applyEXIFOrientation: false),
                                          prompt: "a picture of", options: options))
    }

    @Test func promptsRequestCarriesPromptsAndResultsDecode() async throws {
        // The fake answers one result per prompt, each naming its prompt, as the daemon does.
        let server = try FakeServer { envelope, peer in
            let request = try! CaptionRequest(decoding: envelope.payload)
            let results = request.prompts.enumerated().map { index, prompt in
                CaptionResponse.PromptResult(prompt: prompt, candidates: [
                    .init(text: "\(prompt)|a dog", tokenIDs: [30522, 1037, UInt32(index), 102], score: -0.5 - Double(index), finishReason: .eos),
                    .init(text: "\(prompt)|a", tokenIDs: [30522, 1037], score: -2, finishReason: .length),
                ])
            }
            peer.send(.response(to: envelope, message: CaptionResponse(
                modelID: "tiny", timings: .init(visionMicroseconds: 7, featureCacheHit: true), results: results)))
        }
        defer { server.stop() }
        let client = CaptionClient(socketPath: server.path)
        var options = DecodingOptions()
        options.numReturnSequences = 2
        let response = try await client.caption(image: jpeg, format: .jpeg, prompts: ["", "a picture of"], options: options,
                                                applyEXIFOrientation: false, timeout: .seconds(3))

        let sent = try CaptionRequest(decoding: try #require(server.received.first).payload)
        #expect(sent.prompt == nil, "a prompts call leaves prompt unset (the two are exclusive)")
        #expect(sent.prompts == ["", "a picture of"])
        #expect(sent == CaptionRequest(image: .init(data: jpeg, format: .jpeg, applyEXIFOrientation: false),
                                       options: options, prompts: ["", "a picture of"]))
        #expect(response.candidates.isEmpty)
        #expect(response.results.map(\.prompt) == ["", "a picture of"])
        #expect(response.results[1].candidates == [
            .init(text: "a picture of|a dog", tokenIDs: [30522, 1037, 1, 102], score: -1.5, finishReason: .eos),
            .init(text: "a picture of|a", tokenIDs: [30522, 1037], score: -2, finishReason: .length),
        ])
        #expect(response.results[0].candidates[0].finishReason == .eos)
        #expect(response.timings.featureCacheHit && response.timings.visionMicroseconds == 7)
        #expect(response.promptResults(prompt: nil) == response.results)
    }

    @Test func promptsAnsweredWithoutResultsIsAProtocolViolation() async throws {
        // A daemon that predates `prompts` skips the unknown field and captions unconditionally.
        let server = try FakeServer { envelope, peer in
            peer.send(.response(to: envelope, message: CaptionResponse(candidates: [.init(text: "a dog", tokenIDs: [30522, 102])])))
        }
        defer { server.stop() }
        let client = CaptionClient(socketPath: server.path)
        let error = await #expect(throws: CaptionClientError.self) {
            try await client.caption(image: jpeg, prompts: ["", "a picture of"], timeout: .seconds(3))
        }
        guard case .protocolViolation(let reason) = error else {
            Issue.record("expected protocolViolation, got \(String(describing: error))")
            return
        }
        #expect(reason.contains("2 prompts were answered with 0 results"), "\(reason)")
        // A single-prompt call is still answered in candidates.
        let single = try await client.caption(image: jpeg, prompt: "a picture of", timeout: .seconds(3))
        #expect(single.candidates.map(\.text) == ["a dog"] && single.results.isEmpty)
    }

    @Test func nonOKStatusBecomesRPCErrorWithCodeAndMessage() async throws {
        let server = try FakeServer { envelope, peer in
            peer.send(.failure(callID: envelope.callID, method: envelope.method,
                               error: RPCError(code: .resourceExhausted, message: "caption queue is full; retry later")))
        }
        defer { server.stop() }
        let client = CaptionClient(socketPath: server.path)
        let error = await #expect(throws: CaptionClientError.self) {
            try await client.caption(image: jpeg, timeout: .seconds(3))
        }
        #expect(error == .rpc(RPCError(code: .resourceExhausted, message: "caption queue is full; retry later")))
        #expect(error?.code == .resourceExhausted)
    }

    @Test func healthAndInfoDecodeTheirReplies() async throws {
        let server = try FakeServer { envelope, peer in
            if envelope.method == RPCMethod.healthCheck.rawValue {
                let service = try! HealthCheckRequest(decoding: envelope.payload).service
                peer.send(.response(to: envelope, message: HealthCheckResponse(status: service == "nope" ? .serviceUnknown : .serving)))
            } else {
                peer.send(.response(to: envelope, message: InfoResponse(modelID: "tiny", engineVersion: "0.1")))
            }
        }
        defer { server.stop() }
        let client = CaptionClient(socketPath: server.path)
        #expect(try await client.health() == .serving)
        #expect(try await client.health(service: "nope") == .serviceUnknown)
        let info = try await client.info()
        #expect(info.modelID == "tiny" && info.engineVersion == "0.1")
    }

    @Test func missingSocketIsNoDaemon() async throws {
        let path = FakeServer.temporaryPath()
        let client = CaptionClient(socketPath: path)
        let error = await #expect(throws: CaptionClientError.self) { try await client.health() }
        #expect(error == .noDaemon(path: path))
        // Not a unit's socket: the hint names the daemon, not blip-captiond.socket.
        #expect(error?.description == "no daemon at \(path): nothing listens there; check the path, or start one there (blip-captiond --socket \(path))")
    }

    /// protobuf-c would write "a\0b" as "a": the client refuses such text before connecting
    /// (no daemon listens here, so a request that went out would fail as noDaemon instead).
    @Test func textHoldingNULIsRefusedBeforeSending() async throws {
        let client = CaptionClient(socketPath: FakeServer.temporaryPath())
        for (request, field) in [
            (CaptionRequest(image: .init(data: [1]), prompt: "a\u{0}b"), "prompt"),
            (CaptionRequest(image: .init(data: [1]), prompts: ["ok", "\u{0}"]), "prompts"),
            (CaptionRequest(image: .init(data: [1]), options: DecodingOptions(badWords: ["x\u{0}"])), "options.bad_words"),
        ] {
            let error = await #expect(throws: CaptionClientError.self) { try await client.caption(request) }
            #expect(error?.code == .invalidArgument)
            #expect(error?.description.contains("CaptionRequest.\(field) contains a NUL byte") == true, "\(String(describing: error))")
        }
        #expect(CaptionRequest(image: .init(data: [0, 0]), prompt: "a b").fieldHoldingNUL == nil)
    }

    @Test func socketWithoutListenerIsNoDaemon() async throws {
        // A stale socket file left by a daemon that exited: ECONNREFUSED.
        let stale = FakeServer.temporaryPath()
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        _ = UnixSocketAddress.with(stale) { bind(fd, $0, $1) }
        defer { close(fd); unlink(stale) }
        let error = await #expect(throws: CaptionClientError.self) {
            try await CaptionClient(socketPath: stale).health()
        }
        #expect(error == .noDaemon(path: stale))
    }

    @Test(.enabled(if: getuid() != 0, "root bypasses file permissions, so connect never fails with EACCES"))
    func unreadableSocketIsPermissionDenied() async throws {
        let server = try FakeServer { _, _ in }
        defer { server.stop() }
        chmod(server.path, 0)
        let error = await #expect(throws: CaptionClientError.self) {
            try await CaptionClient(socketPath: server.path).health()
        }
        #expect(error == .permissionDenied(path: server.path, group: UnixSocket.groupName(of: server.path)))
    }

    @Test func connectErrnoMapsToActionableErrors() {
        #expect(UnixSocket.error(connecting: "/s", errno: EACCES) == .permissionDenied(path: "/s", group: nil))
        #expect(UnixSocket.error(connecting: "/s", errno: ENOENT) == .noDaemon(path: "/s"))
        #expect(UnixSocket.error(connecting: "/s", errno: ECONNREFUSED) == .noDaemon(path: "/s"))
        #expect(UnixSocket.error(connecting: "/s", errno: EAGAIN) == .deadlineExceeded)
        #expect(CaptionClientError.permissionDenied(path: "/s", group: "video").description
                == "permission denied on /s: its group is video; add yourself to it (usermod -aG video $USER), then log in again")
        #expect(CaptionClientError.permissionDenied(path: "/s").description
                == "permission denied on /s: ask its owner for access, or pass another socket")
    }

    /// The permission hint names the group the socket really has, not the units' default.
    @Test(.enabled(if: getuid() == 0, "chown to another group needs root"))
    func permissionHintNamesTheSocketsActualGroup() throws {
        let path = FakeServer.temporaryPath()
        #expect(FileManager.default.createFile(atPath: path, contents: nil))
        defer { unlink(path) }
        let gid: gid_t = 65534
        try #require(chown(path, uid_t.max, gid) == 0)
        let expected = getgrgid(gid).map { String(cString: $0.pointee.gr_name) } ?? "65534"
        let error = UnixSocket.error(connecting: path, errno: EACCES)
        #expect(error == .permissionDenied(path: path, group: expected))
        #expect(error.description.contains("its group is \(expected); add yourself to it (usermod -aG \(expected) $USER)"), "\(error)")
        #expect(!error.description.contains("blip-caption"), "\(error)")
    }

    /// The no-daemon hint names a systemd unit only for sockets the units create.
    @Test(arguments: [
        (CaptionClient.defaultSocketPath, "is blip-captiond.socket enabled? (systemctl enable --now blip-captiond.socket)"),
        ("/run/blip-captiond/large.sock", "is blip-captiond@large.socket enabled? (systemctl enable --now blip-captiond@large.socket)"),
        ("/tmp/elsewhere.sock", "nothing listens there; check the path, or start one there (blip-captiond --socket /tmp/elsewhere.sock)"),
        ("/run/blip-captiond/sub/x.sock", "nothing listens there; check the path, or start one there (blip-captiond --socket /run/blip-captiond/sub/x.sock)"),
    ])
    func noDaemonHintNamesTheUnitOnlyForItsSocket(path: String, hint: String) {
        #expect(CaptionClientError.noDaemon(path: path).description == "no daemon at \(path): \(hint)")
    }

    @Test func serverClosingMidCallIsConnectionLostAndNextCallReconnects() async throws {
        let server = try FakeServer { envelope, peer in
            guard envelope.kind == .request else { return }
            if envelope.method == RPCMethod.caption.rawValue {
                peer.close()
            } else {
                peer.send(.response(to: envelope, message: HealthCheckResponse(status: .serving)))
            }
        }
        defer { server.stop() }
        let client = CaptionClient(socketPath: server.path)
        let error = await #expect(throws: CaptionClientError.self) {
            try await client.caption(image: jpeg, timeout: .seconds(5))
        }
        guard case .connectionLost = error else {
            Issue.record("expected connectionLost, got \(String(describing: error))")
            return
        }
        #expect(try await client.health() == .serving)
        #expect(server.connections == 2)
    }

    @Test func silentServerHitsTheDeadline() async throws {
        let server = try FakeServer { _, _ in }
        defer { server.stop() }
        let client = CaptionClient(socketPath: server.path)
        let clock = ContinuousClock()
        let start = clock.now
        let error = await #expect(throws: CaptionClientError.self) {
            try await client.caption(image: jpeg, timeout: .milliseconds(200))
        }
        let elapsed = clock.now - start
        #expect(error == .deadlineExceeded)
        // The upper bound is loose on purpose: Swift Testing runs the engine's synchronous numeric
        // tests on the same two cooperative threads, which can delay resuming this task by tens of
        // seconds under CI load. What matters is that a silent daemon never hangs the caller.
        #expect(elapsed >= .milliseconds(200) && elapsed < .seconds(120), "\(elapsed)")
        let request = try #require(server.received.first)
        #expect(request.timeoutMicroseconds == 200_000)
        // The abandoned call is cancelled on the daemon too.
        #expect(await server.waitUntil { $0.contains(.cancel(callID: request.callID)) })
    }

    @Test func cancellingTheTaskSendsACancelFrame() async throws {
        let server = try FakeServer { _, _ in }
        defer { server.stop() }
        let client = CaptionClient(socketPath: server.path)
        let task = Task { try await client.caption(image: jpeg, timeout: .seconds(30)) }
        #expect(await server.waitUntil { $0.contains { $0.kind == .request } })
        task.cancel()
        let result = await task.result
        #expect(throws: CancellationError.self) { try result.get() }
        let callID = try #require(server.received.first).callID
        #expect(await server.waitUntil { $0.contains(.cancel(callID: callID)) })
    }

    @Test func alreadyCancelledTaskSendsNothing() async throws {
        let server = try FakeServer { _, _ in }
        defer { server.stop() }
        let client = CaptionClient(socketPath: server.path)
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await client.health()
        }
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(server.connections == 0)
    }

    @Test func callIDZeroReplyFailsEveryCallInFlight() async throws {
        let server = try FakeServer { envelope, peer in
            let seen = envelope.callID
            if seen >= 2 {  // both calls are in flight; answer as a daemon that lost the stream
                peer.send(.failure(callID: 0, error: RPCError(code: .invalidArgument, message: "bad envelope")))
                peer.close()
            }
        }
        defer { server.stop() }
        let client = CaptionClient(socketPath: server.path)
        let first = Task { _ = try await client.health(timeout: .seconds(5)) }
        #expect(await server.waitUntil { !$0.isEmpty })
        let second = Task { _ = try await client.info(timeout: .seconds(5)) }
        let expected = CaptionClientError.rpc(RPCError(code: .invalidArgument, message: "bad envelope"))
        await #expect(throws: expected) { try await first.value }
        await #expect(throws: expected) { try await second.value }
    }

    @Test func oversizedReplyIsAProtocolViolation() async throws {
        let server = try FakeServer { envelope, peer in
            peer.send(.response(to: envelope, message: CaptionResponse(modelID: String(repeating: "x", count: 2000))))
        }
        defer { server.stop() }
        let client = CaptionClient(socketPath: server.path, maxFrameBytes: 1024)
        let error = await #expect(throws: CaptionClientError.self) {
            try await client.caption(image: jpeg, timeout: .seconds(5))
        }
        guard case .protocolViolation(let reason) = error else {
            Issue.record("expected protocolViolation, got \(String(describing: error))")
            return
        }
        #expect(reason.contains("exceeds the limit of 1024 bytes"))
    }

    @Test func closeFailsCallsInFlightAndLaterCallsReconnect() async throws {
        let server = try FakeServer { envelope, peer in
            if envelope.method == RPCMethod.healthCheck.rawValue {
                peer.send(.response(to: envelope, message: HealthCheckResponse(status: .serving)))
            }
        }
        defer { server.stop() }
        let client = CaptionClient(socketPath: server.path)
        let task = Task { try await client.caption(image: jpeg, timeout: .seconds(30)) }
        #expect(await server.waitUntil { !$0.isEmpty })
        await client.close()
        await #expect(throws: CaptionClientError.connectionLost("the client was closed")) { try await task.value }
        #expect(try await client.health() == .serving)
        #expect(server.connections == 2)
    }

    @Test func socketPathComesFromArgumentThenEnvironmentThenDefault() {
        #expect(CaptionClient.resolveSocketPath("/a.sock", environment: "/b.sock") == "/a.sock")
        #expect(CaptionClient.resolveSocketPath(nil, environment: "/b.sock") == "/b.sock")
        #expect(CaptionClient.resolveSocketPath(nil, environment: "") == CaptionClient.defaultSocketPath)
        #expect(CaptionClient.resolveSocketPath(nil, environment: nil) == "/run/blip-captiond/blip-captiond.sock")
    }
}
