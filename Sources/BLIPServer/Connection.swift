import BLIPProtocol
import Dispatch
import Glibc
import NIOCore

/// The RPC handler of one client connection, behind its ``ConnectionGate`` and its
/// ``RPCFrameHandler``: frames in, immediate answers (Health, Info, refusals) and caption answers
/// out. Everything here runs on the connection's event loop; the engine reaches it only through
/// ``complete(_:_:)``, which hops onto the loop, so no engine thread ever touches a socket.
///
/// The gate admits the peer, runs the connection's timers and stops reading a peer that does not
/// take its answers; the framing holds half-received frames within the server's byte budget; this
/// handler reports its calls in flight and bounds its outgoing queue by frames (`maxQueuedFrames`,
/// beside the gate's byte bound).
final class Connection: ChannelInboundHandler, CallOwner, @unchecked Sendable {
    // @unchecked: every field is touched only on `eventLoop` (`complete`, the entry point from
    // other threads, hops onto it).
    typealias InboundIn = RPCInbound
    typealias OutboundOut = ByteBuffer

    /// For log lines: `conn 3 call 17 …`.
    var id: Int { gate.id }
    private let gate: ConnectionGate
    private let server: ServerContext
    private let eventLoop: EventLoop
    private var channel: ChannelHandlerContext?

    private var inFlight: [UInt64: Call] = [:]
    /// Caption requests being decoded off the loop (``decodeElsewhere(_:received:)``), by call
    /// id: whether the client cancelled them meanwhile.
    private var decoding: [UInt64: Bool] = [:]
    /// The peer shut its write side: answer what is in flight, then close.
    private var inputClosed = false
    private var closing: Bool { gate.isClosing }
    private var queuedBytes = 0
    private var queuedFrames = 0

    init(gate: ConnectionGate, server: ServerContext, eventLoop: EventLoop) {
        self.gate = gate
        self.server = server
        self.eventLoop = eventLoop
    }

    private var configuration: ServerConfiguration { server.configuration }

    // MARK: Entry points from other threads

    /// Sends call `call`'s one response (from the engine's thread or any other).
    func complete(_ call: Call, _ outcome: Result<CaptionResponse, RPCError>) {
        eventLoop.execute { self.completeOnLoop(call, outcome) }
    }

    // MARK: Channel events

    func channelActive(context: ChannelHandlerContext) {
        channel = context
        gate.abandonCalls = { [unowned self] reason in
            for call in inFlight.values {
                call.finish(.failure(reason))
                call.cancel()
            }
        }
        if gate.overLimit {
            let limit = configuration.maxConnections
            send(.failure(callID: 0, error: RPCError(code: .resourceExhausted, message: "too many connections (\(limit) open, --max-connections); close idle ones or retry later")),
                 thenClose: "too many connections")
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        switch unwrapInboundIn(data) {
        case .frame(let frame):
            handle(frame)
        case .broken(let error, let reason):
            sendConnectionError(error, thenClose: reason)
        }
        reportToGate()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let event = event as? ChannelEvent, event == .inputClosed else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        inputClosed = true  // (mid-frame, the framing has closed the connection already)
        if inFlight.isEmpty && decoding.isEmpty {
            close("peer closed the connection")
        } else {
            server.log("conn \(id): peer shut its write side; answering \(inFlight.count) call(s) in flight, then closing")
        }
    }

    /// The gate stops and resumes reading by the socket's writability; the frame count is this
    /// handler's own bound.
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if queuedFrames > configuration.maxQueuedFrames { falling() }
    }

    func channelInactive(context: ChannelHandlerContext) {
        // Every call still in flight is cancelled: the engine drops it within one piece of
        // work, and its answer goes nowhere.
        let calls = Array(inFlight.values)
        inFlight.removeAll()
        for call in calls { call.cancel() }
        channel = nil
        server.log("conn \(id): closed (\(gate.closeReason))\(calls.isEmpty ? "" : ", \(calls.count) call(s) cancelled")")
    }

    // MARK: Frames

    private func handle(_ frame: [UInt8]) {
        let received = ContinuousClock.now
        let envelope: Envelope
        do {
            envelope = try Envelope(decoding: frame)
        } catch {
            let rpcError = RPCError(mapping: error)
            sendConnectionError(rpcError, thenClose: "bad envelope: \(rpcError.message)".bounded(512))
            return
        }
        switch envelope.kind {
        case .response:
            let rpcError = RPCError(code: .invalidArgument, message: "a client sends only REQUEST and CANCEL envelopes; got a RESPONSE for call \(envelope.callID)")
            sendConnectionError(rpcError, thenClose: rpcError.message)
        case .cancel:
            cancel(envelope.callID)
        case .request:
            if gate.permitted {
                dispatch(envelope, received: received)
            } else {
                reply(to: envelope, .failure(RPCError(code: .permissionDenied, message: "this peer's uid/gid is not allowed to call blip-captiond; ask its administrator to add it to --allow-uid/--allow-gid")),
                      thenClose: "peer not in --allow-uid/--allow-gid")
            }
        }
    }

    private func dispatch(_ envelope: Envelope, received: ContinuousClock.Instant) {
        if inFlight[envelope.callID] != nil || decoding[envelope.callID] != nil {
            reply(to: envelope, .failure(RPCError(code: .alreadyExists, message: "call id \(envelope.callID) is already in flight on this connection; use a new id (the earlier call continues)")))
            return
        }
        guard let method = RPCMethod(rawValue: envelope.method) else {
            let known = RPCMethod.allCases.map(\.rawValue).joined(separator: ", ")
            reply(to: envelope, .failure(RPCError(code: .unimplemented, message: "unknown method \"\(envelope.method.bounded())\"; this server answers \(known)")))
            return
        }
        do {
            switch method {
            case .healthCheck:
                let request = try HealthCheckRequest(decoding: envelope.payload)
                reply(to: envelope, .success(server.health(request).encoded()))
            case .info:
                _ = try InfoRequest(decoding: envelope.payload)
                reply(to: envelope, .success(server.info().encoded()))
            case .caption:
                if envelope.payload.count >= Self.decodeElsewhereBytes {
                    decodeElsewhere(envelope, received: received)
                } else {
                    enqueue(try CaptionRequest(decoding: envelope.payload), envelope: envelope, received: received)
                }
            }
        } catch {
            reply(to: envelope, .failure(RPCError(mapping: error)))
        }
    }

    /// Requests this large are decoded off the event loop (a 32 MiB image costs tens of
    /// milliseconds to copy out of protobuf-c), so other connections are not kept waiting.
    static let decodeElsewhereBytes = 256 << 10

    /// Decodes a large Caption request on another thread, then enqueues it on the loop. Its id
    /// counts as in flight meanwhile (a duplicate is refused; a cancel is answered CANCELLED once
    /// it is decoded, without running it; a closed connection drops it).
    private func decodeElsewhere(_ envelope: Envelope, received: ContinuousClock.Instant) {
        decoding[envelope.callID] = false
        DispatchQueue.global().async { [self] in
            let decoded = Result { () throws(MessageDecodingError) in try CaptionRequest(decoding: envelope.payload) }
            eventLoop.execute { [self] in
                guard let cancelled = decoding.removeValue(forKey: envelope.callID), !closing else { return }
                let last = inputClosed && inFlight.isEmpty && decoding.isEmpty ? "peer closed the connection; every call answered" : nil
                switch decoded {
                case .success where cancelled:
                    reply(to: envelope, .failure(RPCError(code: .cancelled, message: "call \(envelope.callID) was cancelled by the client")), thenClose: last)
                case .success(let request):
                    enqueue(request, envelope: envelope, received: received)
                case .failure(let error):
                    reply(to: envelope, .failure(RPCError(mapping: error)), thenClose: last)
                }
                reportToGate()
            }
        }
    }

    private func enqueue(_ request: CaptionRequest, envelope: Envelope, received: ContinuousClock.Instant) {
        let call = Call(id: envelope.callID, request: request, received: received,
                        timeout: envelope.timeout, owner: self)
        guard !server.isDraining else {
            completeOnLoop(call, .failure(RPCError(code: .unavailable, message: "the server is shutting down; retry on a new connection")))
            return
        }
        inFlight[call.id] = call
        if let refusal = server.admission.submit(call) {
            call.finish(.failure(refusal))
        }
    }

    private func cancel(_ callID: UInt64) {
        // An unknown id is a call that already finished (its response is on its way): ignore.
        inFlight[callID]?.cancel()
        if decoding[callID] != nil { decoding[callID] = true }
    }

    // MARK: Writing

    private func completeOnLoop(_ call: Call, _ outcome: Result<CaptionResponse, RPCError>) {
        if inFlight[call.id] === call { inFlight[call.id] = nil }
        let envelope: Envelope
        let code: StatusCode
        switch outcome {
        case let .success(response):
            envelope = Envelope(callID: call.id, kind: .response, method: RPCMethod.caption.rawValue,
                                payload: response.encoded(), status: .ok)
            code = .ok
        case let .failure(error):
            envelope = .failure(callID: call.id, method: RPCMethod.caption.rawValue, error: error)
            code = error.code
        }
        // Counted before the write, so a client that reads this response and then asks Info
        // already sees it counted.
        let latency = ContinuousClock.now - call.received
        server.record(method: RPCMethod.caption.rawValue, code, latency: latency, response: try? outcome.get())
        let done = inputClosed && inFlight.isEmpty && decoding.isEmpty
        send(envelope, thenClose: done ? "peer closed the connection; every call answered" : nil)
        let detail = outcome.failureMessage.map { ": \($0.bounded(512))" } ?? ""
        server.log("conn \(id) call \(call.id) Caption \(code.name) in \(elapsedText(latency))\(Self.captionSummary(call, outcome))\(detail)")
        reportToGate()
    }

    /// ", image 48213 bytes, 12 tokens, eos" for a caption's log line (the best candidate of each prompt).
    static func captionSummary(_ call: Call, _ outcome: Result<CaptionResponse, RPCError>) -> String {
        var text = ", image \(call.request.image.data.count) bytes"
        if let response = try? outcome.get() {
            let best = response.promptResults(prompt: call.request.prompt).compactMap(\.candidates.first)
            text += ", " + best.map { "\($0.generatedTokens) tokens, \($0.finishReason == .length ? "length" : "eos")" }.joined(separator: "; ")
            if response.timings.featureCacheHit { text += ", features cached" }
        }
        return text
    }

    /// Answers a call that never reached the engine.
    private func reply(to request: Envelope, _ outcome: Result<[UInt8], RPCError>, thenClose reason: String? = nil) {
        switch outcome {
        case let .success(payload):
            server.record(method: request.method, .ok, latency: nil)
            send(Envelope(callID: request.callID, kind: .response, method: request.method.bounded(),
                          payload: payload, status: .ok), thenClose: reason)
        case let .failure(error):
            server.record(method: request.method, error.code, latency: nil)
            send(.failure(callID: request.callID, method: request.method.bounded(), error: error), thenClose: reason)
            server.log("conn \(id) call \(request.callID) \(request.method.bounded()) \(error)".bounded(1024))
        }
    }

    /// The call-id-0 response that reports a broken stream (docs/protocol.md §2.4), then the close.
    private func sendConnectionError(_ error: RPCError, thenClose reason: String) {
        server.record(method: "", error.code, latency: nil)
        send(.failure(callID: 0, error: error), thenClose: reason)
    }

    /// Queues `envelope`'s frame; with `thenClose`, closes once it is written.
    private func send(_ envelope: Envelope, thenClose reason: String? = nil) {
        guard let channel, !closing else { return }
        var envelope = envelope
        if let message = envelope.status?.message, message.utf8.count > 1024 { envelope.status?.message = message.bounded(1024) }
        let frame: [UInt8]
        do {
            frame = try FrameEncoder().encode(envelope.encoded())
        } catch {
            server.log("conn \(id) call \(envelope.callID): response not sent: \(error)")
            return
        }
        queuedBytes += frame.count
        queuedFrames += 1
        let promise = eventLoop.makePromise(of: Void.self)
        let size = frame.count
        promise.futureResult.whenComplete { _ in
            self.queuedBytes -= size
            self.queuedFrames -= 1
            if self.queuedFrames <= self.configuration.maxQueuedFrames { self.gate.peerCaughtUp() }
        }
        channel.writeAndFlush(wrapOutboundOut(channel.channel.allocator.buffer(bytes: frame)), promise: promise)
        if let reason {
            gate.closing(reason)
            promise.futureResult.whenComplete { _ in channel.close(promise: nil) }
            return
        }
        if queuedFrames > configuration.maxQueuedFrames { falling() }
    }

    /// More answers queued than `maxQueuedFrames`: the gate closes the connection unless the peer
    /// catches up within `--send-grace-period`.
    private func falling() {
        gate.peerFallingBehind { "\(self.queuedBytes) bytes in \(self.queuedFrames) response(s)" }
    }

    private func close(_ reason: String) {
        gate.close(reason)
    }

    /// Tells the gate what this connection holds: a half-received frame, calls in flight.
    private func reportToGate() {
        gate.report(callsInFlight: inFlight.count + decoding.count)
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}

extension Result {
    var failureMessage: String? {
        if case let .failure(error) = self { return "\(error)" }
        return nil
    }
}
