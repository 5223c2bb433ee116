import BLIPProtocol
import Foundation
import NIOCore
import NIOHTTP1

/// The daemon's HTTP/1.1 face, behind its ``ConnectionGate`` and on the same event loop as the
/// RPC sockets (SwiftNIO's HTTP codec; no hand-written parsing):
/// - `GET /healthz`: 200 while the process serves; `GET /readyz`: 200 when the model is loaded and
///   the daemon is not draining, else 503 — both answered without touching the engine;
/// - `GET /metrics`: Prometheus's text format (``ServerMetrics``);
/// - `GET /v1/models` and `POST /v1/chat/completions`: OpenAI-compatible captioning
///   (``ChatCompletionRequest``), through the same bounded admission as RPC calls.
///
/// Refusals come from the request head, before any body is read: past `--max-connections` (503),
/// not in the allow-lists (403), without the bearer token (401), a `Content-Length` above the
/// largest image base64-encoded (413); each closes the connection. Bodies are held within the
/// server's byte budget (`--max-buffered-bytes`, shared with RPC frames) and parsed off the event
/// loop. A caption's deadline is the server's (`--http-request-timeout`) or the request's
/// ``timeoutHeader``. One request at a time per connection (no pipelining of captions); a client
/// that closes its side mid-caption cancels the caption (the gate closes the connection).
final class HTTPHandler: ChannelInboundHandler, CallOwner, @unchecked Sendable {
    // @unchecked: every field is touched only on `eventLoop`; `complete` hops onto it.
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// The request header that sets a caption's deadline, in seconds (decimal): `X-Request-Timeout: 30`.
    static let timeoutHeader = "x-request-timeout"
    /// The longest deadline a request may ask for.
    static let maxTimeout: Duration = .seconds(86_400)

    private let gate: ConnectionGate
    private let server: ServerContext
    private let eventLoop: EventLoop
    private var channel: ChannelHandlerContext?
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    /// Bytes of `body` reserved from the server's budget.
    private var heldBytes = 0
    /// This request was refused from its head: its body is not read.
    private var refused = false
    /// The body is being parsed off the loop.
    private var parsing = false
    /// The chat completion in progress (one per connection at a time).
    private var pending: Exchange?
    /// Answers written and not yet taken by the socket.
    private var answersUnwritten = 0
    /// A whole request that waits for the previous answer to be taken (``writeEnd(_:keepAlive:)``).
    private var deferred: HTTPRequestHead?

    /// This request's id: its `X-Request-Id` (printable, at most 128 bytes) or one made here;
    /// sent back on every answer and logged with the caption.
    private var requestID = ""

    private struct Exchange {
        let call: Call
        let stream: Bool
        let model: String
        let includeUsage: Bool
        /// `stop` over the streamed text.
        var stops: StopSequences
        let id = "chatcmpl-\(UInt64.random(in: 1 ... .max))"
        let created = Int(Date().timeIntervalSince1970)
        /// The 200 head and the role chunk of a streamed reply are out: the rest must be events.
        var streaming = false
    }

    init(gate: ConnectionGate, server: ServerContext, eventLoop: EventLoop) {
        self.gate = gate
        self.server = server
        self.eventLoop = eventLoop
    }

    private var bodyLimit: Int { server.configuration.maxFrameBytes * 4 / 3 + 4096 }  // base64 of the largest image

    func channelActive(context: ChannelHandlerContext) {
        channel = context
        gate.abandonCalls = { [unowned self] reason in
            pending?.call.finish(.failure(reason))
            pending?.call.cancel()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        releaseBody()
        pending?.call.cancel()
        channel = nil
        // Probes and scrapes open and close connections all the time: an ordinary end is not logged.
        let ordinary = gate.closeReason.hasPrefix("peer closed") || gate.closeReason.hasPrefix("answered")
        if pending != nil || !ordinary {
            server.log("conn \(gate.id): HTTP connection closed (\(gate.closeReason))\(pending == nil ? "" : ", its caption cancelled")")
        }
    }

    /// A framing error (RFC 9112: both Content-Length and Transfer-Encoding, a bad chunk, a head
    /// that does not parse): NIO's protocol error handler has answered 400; nothing after it can be
    /// read as a request, so the connection closes.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        gate.close("HTTP framing error: \(error)".bounded(256))
    }

    /// Tells the gate what this connection holds: a request partly received, a call in flight.
    private func reportToGate(receiving: Bool) {
        gate.report(receiving: receiving, callsInFlight: pending != nil || parsing ? 1 : 0)
    }

    private func releaseBody() {
        server.budget.release(heldBytes)
        heldBytes = 0
        body = []
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            requestID = Self.requestID(head)
            releaseBody()
            refused = false
            if let refusal = refusal(head) {
                refused = true
                respond(status: refusal.status, json: Self.error(refusal.message, type: refusal.type, code: refusal.code), close: refusal.reason)
            } else if head.headers.first(name: "expect")?.lowercased() == "100-continue" {
                // The client waits for this before sending the body (curl: 1 s for bodies over 1 MiB).
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
            }
        case .body(var buffer):
            guard !refused else { return }
            let count = buffer.readableBytes
            if body.count + count > bodyLimit {
                refused = true
                respond(status: .payloadTooLarge, json: Self.error("the body is larger than \(bodyLimit) bytes", type: "invalid_request_error"),
                        close: "HTTP body over the limit")
                return
            }
            guard server.budget.reserve(count) else {
                refused = true
                server.log("conn \(gate.id): the incoming-bytes budget (\(server.budget.limit) bytes, --max-buffered-bytes) is full, refusing")
                respond(status: .serviceUnavailable, json: Self.error("the daemon is holding its limit of \(server.budget.limit) bytes of partly received requests (--max-buffered-bytes); retry later or send smaller requests", type: "server_error"),
                        close: "incoming-bytes budget full")
                return
            }
            heldBytes += count
            body += buffer.readBytes(length: count) ?? []
        case .end:
            guard !refused, let head else { return }
            reportToGate(receiving: false)
            guard answersUnwritten == 0 else {
                deferred = head
                gate.peerFallingBehind { "an answer" }
                return
            }
            handleRequest(head)
        }
    }

    private func handleRequest(_ head: HTTPRequestHead) {
        route(head)
        reportToGate(receiving: false)
    }

    /// What a request head alone refuses, before any of its body is read.
    private func refusal(_ head: HTTPRequestHead) -> (status: HTTPResponseStatus, message: String, type: String, code: String?, reason: String)? {
        if gate.overLimit {
            let limit = server.configuration.maxConnections
            return (.serviceUnavailable, "too many connections (\(limit) open, --max-connections); close idle ones or retry later", "server_error", nil, "too many connections")
        }
        guard gate.permitted else {
            return (.forbidden, "this peer's uid/gid is not allowed to call blip-captiond; ask its administrator to add it to --allow-uid/--allow-gid", "permission_error", nil, "peer not in --allow-uid/--allow-gid")
        }
        let path = Self.path(head)
        if let token = server.configuration.httpToken, path != "/healthz", path != "/readyz",
           head.headers.first(name: "authorization") != "Bearer \(token)" {
            return (.unauthorized, "this endpoint needs Authorization: Bearer <token> (the daemon's --http-token-file)", "invalid_request_error", "invalid_api_key", "no valid bearer token")
        }
        if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > bodyLimit {
            return (.payloadTooLarge, "the body of \(length) bytes is larger than \(bodyLimit) (the image limit, base64-encoded)", "invalid_request_error", nil, "HTTP body over the limit")
        }
        return nil
    }

    /// The client's `X-Request-Id` when it is printable ASCII of at most 128 bytes, else a new one.
    static func requestID(_ head: HTTPRequestHead) -> String {
        if let given = head.headers.first(name: "x-request-id"), !given.isEmpty, given.utf8.count <= 128,
           given.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) {
            return given
        }
        return "req_" + String(UInt64.random(in: 1 ... .max), radix: 16)
    }

    /// The names `model` may take: the model's id, its last path component and "blip" (a daemon
    /// serves one model), as `/v1/models` lists them.
    static func modelNames(id: String) -> [String] {
        var names = [id]
        if let last = id.split(separator: "/").last.map(String.init), !names.contains(last) { names.append(last) }
        if !names.contains("blip") { names.append("blip") }
        return names
    }

    static func path(_ head: HTTPRequestHead) -> String {
        head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
    }

    /// The caption's timeout: the request's ``timeoutHeader``, else `--http-request-timeout`.
    /// - Throws: A message for a header that is not a positive number of seconds.
    private func timeout(_ head: HTTPRequestHead) throws(ChatCompletionError) -> Duration? {
        guard let text = head.headers.first(name: Self.timeoutHeader) else { return server.configuration.httpRequestTimeout }
        guard let seconds = Double(text.trimmingCharacters(in: .whitespaces)), seconds > 0, seconds.isFinite else {
            throw .invalid("X-Request-Timeout must be a positive number of seconds; got \"\(text.bounded(32))\"")
        }
        return min(.milliseconds(Int64(min(seconds, 86_400) * 1000)), Self.maxTimeout)
    }

    // MARK: Routes

    private func route(_ head: HTTPRequestHead) {
        let path = Self.path(head)
        switch (head.method, path) {
        case (.GET, "/healthz"):
            respond(status: .ok, text: "ok\n")
        case (.GET, "/readyz"):
            server.isDraining ? respond(status: .serviceUnavailable, text: "draining\n") : respond(status: .ok, text: "ready\n")
        case (.GET, "/metrics"):
            respond(status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8", bytes: server.metrics.exposition(server))
        case (.GET, "/v1/models"):
            let names = Self.modelNames(id: server.admission.service.describe().modelID)
            respond(status: .ok, json: ["object": "list", "data": names.map {
                ["id": $0, "object": "model", "created": server.startedUnix, "owned_by": "blip-captiond"] as [String: Any]
            }])
        case (.POST, "/v1/chat/completions"):
            chatCompletion(head)
        case (_, "/healthz"), (_, "/readyz"), (_, "/metrics"), (_, "/v1/models"), (_, "/v1/chat/completions"):
            respond(status: .methodNotAllowed, json: Self.error("\(head.method) is not allowed on \(path.bounded())", type: "invalid_request_error"))
        default:
            respond(status: .notFound, json: Self.error("no route \(path.bounded()); this daemon serves /healthz, /readyz, /metrics, /v1/models, /v1/chat/completions", type: "invalid_request_error"))
        }
    }

    /// Parses the body off the event loop (a large JSON body costs tens of milliseconds), then
    /// submits the caption.
    private func chatCompletion(_ head: HTTPRequestHead) {
        let body = self.body
        self.body = []  // the parser's copy is the only one: freed as soon as it is parsed (its bytes stay counted until then)
        parsing = true
        let optionLimits = server.admission.service.describe().limits.optionLimits
        DispatchQueue.global().async { [self] in
            let parsed = Result { () throws(ChatCompletionError) in try ChatCompletionRequest(json: body, limits: optionLimits) }
            eventLoop.execute { [self] in
                parsing = false
                releaseBody()
                guard channel != nil else { return }
                submit(parsed, head: head)
                reportToGate(receiving: false)
            }
        }
    }

    private func submit(_ parsed: Result<ChatCompletionRequest, ChatCompletionError>, head: HTTPRequestHead) {
        let request: ChatCompletionRequest
        let timeout: Duration?
        do {
            request = try parsed.get()
            timeout = try self.timeout(head)
        } catch {
            server.record(method: RPCMethod.caption.rawValue, .invalidArgument, latency: nil)
            respond(status: .badRequest, json: Self.error(error.message, type: "invalid_request_error", param: error.param, code: error.code))
            return
        }
        let modelID = server.admission.service.describe().modelID
        if let asked = request.model, !Self.modelNames(id: modelID).contains(asked) {
            server.record(method: RPCMethod.caption.rawValue, .notFound, latency: nil)
            respond(status: .notFound, json: Self.error("The model `\(asked.bounded(64))` does not exist or you do not have access to it; this daemon serves \(Self.modelNames(id: modelID).map { "`\($0)`" }.joined(separator: ", ")) (GET /v1/models).",
                                                        type: "invalid_request_error", param: "model", code: "model_not_found"))
            return
        }
        let model = request.model ?? modelID
        // Text as it is generated (greedy decoding and sampling) goes out as events at once; the
        // engine's thread only hands it to the event loop.
        var onText: (@Sendable (Int, String) -> Void)?
        if request.stream {
            let loop = eventLoop
            onText = { [self] (_: Int, piece: String) in loop.execute { self.streamOnLoop(piece) } }
        }
        let call = Call(id: 0, request: request.caption, received: .now, timeout: timeout, owner: self, onText: onText)
        pending = Exchange(call: call, stream: request.stream, model: model, includeUsage: request.includeUsage,
                           stops: StopSequences(request.stop))
        guard !server.isDraining else {
            call.finish(.failure(RPCError(code: .unavailable, message: "the server is shutting down; retry later")))
            return
        }
        if let refusal = server.admission.submit(call) { call.finish(.failure(refusal)) }
    }

    func complete(_ call: Call, _ outcome: Result<CaptionResponse, RPCError>) {
        eventLoop.execute { self.completeOnLoop(call, outcome) }
    }

    /// One piece of a streamed caption: the first sends the 200 head and the role chunk.
    private func streamOnLoop(_ piece: String, final: Bool = false) {
        guard var exchange = pending, exchange.stream, let channel else { return }
        let piece = exchange.stops.take(piece, final: final)
        pending = exchange
        guard !piece.isEmpty else { return }
        if !exchange.streaming {
            var headers = HTTPHeaders()
            headers.add(name: "content-type", value: "text/event-stream")
            headers.add(name: "cache-control", value: "no-cache")
            headers.add(name: "x-request-id", value: requestID)
            channel.write(wrapOutboundOut(.head(HTTPResponseHead(version: head?.version ?? .http1_1, status: .ok, headers: headers))), promise: nil)
            writeEvent(ChatCompletionReply.chunk(id: exchange.id, created: exchange.created, model: exchange.model, index: 0,
                                                 delta: ["role": "assistant", "content": ""]))
            exchange.streaming = true
            pending = exchange
        }
        writeEvent(ChatCompletionReply.chunk(id: exchange.id, created: exchange.created, model: exchange.model, index: 0,
                                             delta: ["content": piece]))
        channel.flush()
    }

    private func writeEvent(_ object: [String: Any]) {
        writeEvent(text: Self.jsonText(object))
    }

    private func writeEvent(text: String) {
        guard let channel else { return }
        channel.write(wrapOutboundOut(.body(.byteBuffer(channel.channel.allocator.buffer(string: "data: " + text + "\n\n")))), promise: nil)
    }

    private func completeOnLoop(_ call: Call, _ outcome: Result<CaptionResponse, RPCError>) {
        guard let exchange = pending, exchange.call === call else { return }
        pending = nil
        defer { reportToGate(receiving: false) }
        let latency = ContinuousClock.now - call.received
        let (id, created, model) = (exchange.id, exchange.created, exchange.model)
        let stop = exchange.stops.stops
        let code: StatusCode = switch outcome { case .success: .ok; case .failure(let error): error.code }
        server.log("http \(requestID): caption \(code.name) in \(Int((latency / .milliseconds(1)).rounded())) ms")
        switch outcome {
        case .success(let response):
            server.record(method: RPCMethod.caption.rawValue, .ok, latency: latency, response: response)
            if exchange.streaming {
                // What a possible stop sequence held back goes out now, unless it was one.
                pending = exchange
                streamOnLoop("", final: true)
                pending = nil
                for (index, candidate) in response.candidates.enumerated() {
                    let finish = exchange.stops.stopped ? "stop" : ChatCompletionReply.content(candidate, stop: stop).finishReason
                    writeEvent(ChatCompletionReply.chunk(id: id, created: created, model: model, index: index, delta: [:], finishReason: finish))
                }
                if exchange.includeUsage { writeEvent(ChatCompletionReply.usageChunk(response, id: id, created: created, model: model)) }
                endStream()
            } else if exchange.stream {
                var text = ""
                for chunk in ChatCompletionReply.chunks(response, id: id, created: created, model: model, stop: stop,
                                                        includeUsage: exchange.includeUsage) {
                    text += "data: " + Self.jsonText(chunk) + "\n\n"
                }
                text += "data: [DONE]\n\n"
                respond(status: .ok, contentType: "text/event-stream", bytes: Array(text.utf8))
            } else {
                respond(status: .ok, json: ChatCompletionReply.body(response, id: id, created: created, model: model, stop: stop))
            }
        case .failure(let error):
            server.record(method: RPCMethod.caption.rawValue, error.code, latency: latency)
            let (status, type) = Self.httpStatus(error.code)
            let body = Self.error(error.message, type: type, param: Self.openAIParam(error), code: error.code.name)
            if exchange.streaming {
                // The 200 is out: the failure is an error event, as OpenAI's API sends one.
                writeEvent(body)
                endStream()
            } else {
                respond(status: status, json: body)
            }
        }
    }

    /// `[DONE]` and the end of a streamed reply.
    private func endStream() {
        guard let channel else { return }
        writeEvent(text: "[DONE]")
        writeEnd(channel, keepAlive: head?.isKeepAlive ?? false)
    }

    // MARK: Answers

    /// gRPC status → HTTP status and OpenAI error type.
    static func httpStatus(_ code: StatusCode) -> (HTTPResponseStatus, String) {
        switch code {
        case .invalidArgument, .outOfRange, .failedPrecondition: (.badRequest, "invalid_request_error")
        case .resourceExhausted: (.tooManyRequests, "rate_limit_error")
        case .unavailable: (.serviceUnavailable, "server_error")
        case .deadlineExceeded: (.gatewayTimeout, "timeout")
        case .permissionDenied, .unauthenticated: (.forbidden, "permission_error")
        case .cancelled: (HTTPResponseStatus(statusCode: 499, reasonPhrase: "Client Closed Request"), "cancelled")
        default: (.internalServerError, "server_error")
        }
    }

    static func error(_ message: String, type: String, param: String? = nil, code: String? = nil) -> [String: Any] {
        ["error": ["message": message, "type": type, "param": param.map { $0 as Any } ?? NSNull(), "code": code.map { $0 as Any } ?? NSNull()]]
    }

    /// The OpenAI field an engine's INVALID_ARGUMENT is about, when its message starts with an
    /// option that one sets ("max_new_tokens must be …" → `max_tokens`), else the option's own name.
    static func openAIParam(_ error: RPCError) -> String? {
        guard error.code == .invalidArgument,
              let option = DecodingOption.allCases.first(where: { error.message.hasPrefix($0.rawValue + " ") }) else { return nil }
        return option.row.openAI?.names.last ?? option.rawValue
    }

    static func jsonText(_ object: [String: Any]) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    /// With `close`, the connection closes once the answer is written; its text is the log's reason.
    private func respond(status: HTTPResponseStatus, json: [String: Any], close: String? = nil) {
        respond(status: status, contentType: "application/json", bytes: Array(Self.jsonText(json).utf8), close: close)
    }

    private func respond(status: HTTPResponseStatus, text: String) {
        respond(status: status, contentType: "text/plain; charset=utf-8", bytes: Array(text.utf8))
    }

    private func respond(status: HTTPResponseStatus, contentType: String, bytes: [UInt8], close: String? = nil) {
        guard let channel else { return }
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: contentType)
        headers.add(name: "content-length", value: "\(bytes.count)")
        headers.add(name: "x-request-id", value: requestID)
        if status == .tooManyRequests || status == .serviceUnavailable {
            // Busy (the queue is full, too many connections) or draining: a client may retry soon.
            headers.add(name: "retry-after", value: "1")
        }
        if let close {
            headers.add(name: "connection", value: "close")
            gate.closing(close)
        }
        let version = head?.version ?? .http1_1
        channel.write(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: status, headers: headers))), promise: nil)
        channel.write(wrapOutboundOut(.body(.byteBuffer(channel.channel.allocator.buffer(bytes: bytes)))), promise: nil)
        writeEnd(channel, keepAlive: close == nil && (head?.isKeepAlive ?? false))
    }

    /// Writes an answer's last part. Until the socket has taken it, the next pipelined request
    /// waits (``deferred``), so a client that sends requests and never reads its answers holds at
    /// most one answer beyond the kernel's buffer, is not read further (NIO's pipelining handler
    /// reads no more while a request waits) and is dropped after `--send-grace-period`. The count
    /// goes up before the write because NIO hands over the next pipelined request inside it; the
    /// waiting request is then taken up in a task of its own, so a long pipeline never nests
    /// one answer's write inside another's.
    private func writeEnd(_ channel: ChannelHandlerContext, keepAlive: Bool) {
        answersUnwritten += 1
        let done = channel.eventLoop.makePromise(of: Void.self)
        channel.writeAndFlush(wrapOutboundOut(.end(nil)), promise: done)
        done.futureResult.whenComplete { _ in
            self.answersUnwritten -= 1
            guard self.answersUnwritten == 0 else { return }
            self.gate.peerCaughtUp()
            if let head = self.deferred {
                self.deferred = nil
                self.eventLoop.execute { self.handleRequest(head) }
            }
        }
        closeWhenWritten(done.futureResult, keepAlive: keepAlive)
    }

    /// Closes the connection once `written` completes, unless it is kept alive.
    private func closeWhenWritten(_ written: EventLoopFuture<Void>, keepAlive: Bool) {
        guard !keepAlive, let connection = channel?.channel else { return }
        gate.closing("answered; the client did not ask to keep the connection alive")
        written.whenComplete { _ in connection.close(promise: nil) }
    }
}
