import BLIPProtocol
import Glibc

/// One client connection: a thread reads frames and dispatches them; responses are written by the
/// reader (immediate answers) or the scheduler's delivery queue (captions), under a lock so frames
/// never interleave; never by the engine's thread.
final class Connection: Sendable {
    /// For log lines: `conn 3 call 17 …`.
    let id: Int
    private let fd: Int32
    private let context: ServerContext

    private struct State {
        var inFlight: [UInt64: Call] = [:]
        /// Set by the reader once it is done: the fd is closed, responses are dropped.
        var closed = false
    }
    private let state = LockedState(State())

    init(id: Int, fd: Int32, context: ServerContext) {
        self.id = id
        self.fd = fd
        self.context = context
    }

    /// Wakes the reader (its read returns end of stream) so the connection winds down.
    func shutdown() {
        state.withLock { state in
            if !state.closed { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) }
        }
    }

    // MARK: Reading

    /// The reader: runs on the connection's own thread until the peer leaves, the stream
    /// breaks, or the server shuts the connection; then cancels what is left and closes.
    func serve() {
        let peer = PeerCredentials.of(fd)
        let permitted = peer?.isAllowed(uids: context.configuration.allowedUIDs,
                                        gids: context.configuration.allowedGIDs)
            ?? (context.configuration.allowedUIDs == nil && context.configuration.allowedGIDs == nil)
        context.log("conn \(id): open (\(peer.map(String.init(describing:)) ?? "peer unknown"))\(permitted ? "" : ", not in --allow-uid/--allow-gid: requests will be refused")")

        var decoder = FrameDecoder(maxFrameBytes: context.configuration.maxFrameBytes)
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        var reason = "peer closed the connection"
        let stallLimit = context.configuration.partialFrameTimeout
        var lastProgress = ContinuousClock.now
        reading: while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK {
                    // The receive timeout: idle between frames is fine, a half-sent frame is not.
                    if decoder.hasPartialFrame && ContinuousClock.now - lastProgress > stallLimit {
                        reason = "peer stalled mid-frame for more than \(stallLimit)"
                        break
                    }
                    if !decoder.hasPartialFrame { lastProgress = .now }
                    continue
                }
                reason = "read failed: \(errnoText(errno))"
                break
            }
            if count == 0 {
                if decoder.hasPartialFrame { reason = "peer closed the connection mid-frame" }
                break
            }
            lastProgress = .now
            decoder.append(Array(buffer[0..<count]))
            do {
                while let frame = try decoder.nextFrame() {
                    if let fatal = handle(frame, permitted: permitted) {
                        reason = fatal
                        break reading
                    }
                }
            } catch {
                let rpcError = RPCError(mapping: error)
                sendConnectionError(rpcError)
                reason = "\(rpcError)"
                break
            }
        }
        close(reason: reason)
    }

    /// Handles one frame; returns why the connection must close, or `nil` to go on.
    private func handle(_ frame: [UInt8], permitted: Bool) -> String? {
        let received = ContinuousClock.now
        let envelope: Envelope
        do {
            envelope = try Envelope(decoding: frame)
        } catch {
            let rpcError = RPCError(mapping: error)
            sendConnectionError(rpcError)
            return "bad envelope: \(rpcError.message)"
        }
        switch envelope.kind {
        case .response:
            let rpcError = RPCError(code: .invalidArgument, message: "a client sends only REQUEST and CANCEL envelopes; got a RESPONSE for call \(envelope.callID)")
            sendConnectionError(rpcError)
            return rpcError.message
        case .cancel:
            cancel(envelope.callID)
        case .request:
            if permitted {
                dispatch(envelope, received: received)
            } else {
                reply(to: envelope, .failure(RPCError(code: .permissionDenied, message: "this peer's uid/gid is not allowed to call blip-captiond; ask its administrator to add it to --allow-uid/--allow-gid")))
            }
        }
        return nil
    }

    private func dispatch(_ envelope: Envelope, received: ContinuousClock.Instant) {
        if state.withLock({ $0.inFlight[envelope.callID] != nil }) {
            reply(to: envelope, .failure(RPCError(code: .alreadyExists, message: "call id \(envelope.callID) is already in flight on this connection; use a new id (the earlier call continues)")))
            return
        }
        guard let method = RPCMethod(rawValue: envelope.method) else {
            let known = RPCMethod.allCases.map(\.rawValue).joined(separator: ", ")
            reply(to: envelope, .failure(RPCError(code: .unimplemented, message: "unknown method \"\(envelope.method)\"; this server answers \(known)")))
            return
        }
        do {
            switch method {
            case .healthCheck:
                let request = try HealthCheckRequest(decoding: envelope.payload)
                reply(to: envelope, .success(context.health(request).encoded()))
            case .info:
                _ = try InfoRequest(decoding: envelope.payload)
                reply(to: envelope, .success(context.info().encoded()))
            case .caption:
                let request = try CaptionRequest(decoding: envelope.payload)
                enqueue(request, envelope: envelope, received: received)
            }
        } catch {
            reply(to: envelope, .failure(RPCError(mapping: error)))
        }
    }

    private func enqueue(_ request: CaptionRequest, envelope: Envelope, received: ContinuousClock.Instant) {
        let call = Call(id: envelope.callID, request: request, received: received,
                        timeout: envelope.timeout, connection: self)
        guard !context.isDraining else {
            call.finish(.failure(RPCError(code: .unavailable, message: "the server is shutting down; retry on a new connection")))
            return
        }
        state.withLock { $0.inFlight[call.id] = call }
        if let refusal = context.scheduler.submit(call) {
            call.finish(.failure(refusal))
        }
    }

    private func cancel(_ callID: UInt64) {
        // An unknown id is a call that already finished (its response is on its way): ignore.
        guard let call = state.withLock({ $0.inFlight[callID] }) else { return }
        let reason = RPCError(code: .cancelled, message: "call \(callID) was cancelled by the client")
        call.stop(reason)
        context.scheduler.cancel(call)
    }

    // MARK: Writing

    /// Sends call `call`'s one response and counts it.
    func complete(_ call: Call, _ outcome: Result<CaptionResponse, RPCError>) {
        state.withLock { state in
            if state.inFlight[call.id] === call { state.inFlight[call.id] = nil }
        }
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
        context.statistics.record(code, latency: latency)
        send(envelope)
        let detail = outcome.failureMessage.map { ": \($0)" } ?? ""
        context.log("conn \(id) call \(call.id) Caption \(code.name) in \(elapsedText(latency))\(detail)")
    }

    /// Answers a call that never entered the queue.
    private func reply(to request: Envelope, _ outcome: Result<[UInt8], RPCError>) {
        switch outcome {
        case let .success(payload):
            context.statistics.record(.ok, latency: nil)
            send(Envelope(callID: request.callID, kind: .response, method: request.method,
                          payload: payload, status: .ok))
        case let .failure(error):
            context.statistics.record(error.code, latency: nil)
            send(.failure(callID: request.callID, method: request.method, error: error))
            context.log("conn \(id) call \(request.callID) \(request.method) \(error)")
        }
    }

    /// The call-id-0 response that reports a broken stream (docs/protocol.md §2.4).
    private func sendConnectionError(_ error: RPCError) {
        context.statistics.record(error.code, latency: nil)
        send(.failure(callID: 0, error: error))
    }

    private func send(_ envelope: Envelope) {
        let frame: [UInt8]
        do {
            frame = try FrameEncoder().encode(envelope.encoded())
        } catch {
            context.log("conn \(id) call \(envelope.callID): response not sent: \(error)")
            return
        }
        // The lock keeps frames whole and keeps the fd open while writing.
        let failure: Int32? = state.withLock { state in
            guard !state.closed else { return nil }
            return frame.withUnsafeBytes { bytes -> Int32? in
                var offset = 0
                while offset < bytes.count {
                    let written = Glibc.send(fd, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
                    if written < 0 {
                        if errno == EINTR { continue }
                        return errno
                    }
                    offset += written
                }
                return nil
            }
        }
        if let failure {
            // A peer that stopped reading (send timed out) or left: end the connection.
            context.log("conn \(id): write failed: \(errnoText(failure)), closing")
            shutdown()
        }
    }

    // MARK: Closing

    private func close(reason: String) {
        // Every call still in flight is cancelled: the engine drops it within one piece of work
        // and its answer goes into the void. Then the descriptor closes,
        // under the lock so no response is being written to it.
        let calls = state.withLock { state in
            Array(state.inFlight.values)
        }
        let cancelled = RPCError(code: .cancelled, message: "the connection closed")
        for call in calls {
            call.stop(cancelled)
            context.scheduler.cancel(call)
        }
        state.withLock { state in
            state.closed = true
            Glibc.close(fd)
        }
        context.closed(self)
        context.log("conn \(id): closed (\(reason))\(calls.isEmpty ? "" : ", \(calls.count) call(s) cancelled")")
    }
}

extension Result {
    var failureMessage: String? {
        if case let .failure(error) = self { return "\(error)" }
        return nil
    }
}
