import BLIPProtocol
import Foundation
import NIOCore
import NIOHTTP1

/// The daemon's HTTP/1.1 face, on the same event loop as the RPC sockets (SwiftNIO's HTTP codec;
/// no hand-written parsing):
/// - `GET /healthz`: 200 while the process serves; `GET /readyz`: 200 when the model is loaded and
///   the daemon is not draining, else 503 — both answered without touching the engine;
/// - `GET /metrics`: Prometheus's text format (``ServerMetrics``);
/// - `GET /v1/models` and `POST /v1/chat/completions`: OpenAI-compatible captioning
///   (``ChatCompletionRequest``), through the same bounded admission as RPC calls.
/// Bodies are refused early by `Content-Length` (413 above the RPC frame limit); one request at a
/// time per connection (no pipelining of captions).
final class HTTPHandler: ChannelInboundHandler, CallOwner, @unchecked Sendable {
    // @unchecked: every field is touched only on `eventLoop`; `complete` hops onto it.
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let server: ServerContext
    private let eventLoop: EventLoop
    private var channel: ChannelHandlerContext?
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var refused = false
    /// The chat completion in progress (one per connection at a time).
    private var pending: Exchange?

    private struct Exchange {
        let call: Call
        let stream: Bool
        let model: String
        let id = "chatcmpl-\(UInt64.random(in: 1 ... .max))"
        let created = Int(Date().timeIntervalSince1970)
        /// The 200 head and the role chunk of a streamed reply are out: the rest must be events.
        var streaming = false
    }

    init(server: ServerContext, eventLoop: EventLoop) {
        self.server = server
        self.eventLoop = eventLoop
    }

    private var bodyLimit: Int { server.configuration.maxFrameBytes * 4 / 3 + 4096 }  // base64 of the largest image

    func channelActive(context: ChannelHandlerContext) {
        channel = context
        // On a Unix socket the allow-lists apply as on the RPC socket (TCP peers have no
        // credentials: use --http-token-file there).
        if let peer = PeerCredentials.of(context.channel) {
            permitted = peer.isAllowed(uids: server.configuration.allowedUIDs, gids: server.configuration.allowedGIDs)
        }
        server.httpOpened()
        // Peers the allow-lists refuse do not count, as on the RPC socket.
        if permitted {
            counted = server.admitCounted()
            overLimit = !counted
            if overLimit { server.log("refused an HTTP connection: \(server.configuration.maxConnections) already open (--max-connections)") }
        }
        armIdleTimer()
    }

    /// Whether this connection counts against `--max-connections`.
    private var counted = false
    /// Past `--max-connections`: the first request gets a 503 and the connection closes.
    private var overLimit = false

    /// Whether the peer passed the allow-lists.
    private var permitted = true

    /// HTTP connections close after the RPC side's `--idle-timeout` with no request in progress,
    /// and after `--partial-frame-timeout` in the middle of one.
    private var idleTimer: Scheduled<Void>?
    /// Between a request's head and its end.
    private var inRequest = false

    private func armIdleTimer() {
        idleTimer?.cancel()
        idleTimer = nil
        guard pending == nil else { return }  // a caption in progress: its deadline is the engine's
        let limit = inRequest ? server.configuration.partialFrameTimeout : server.configuration.idleTimeout
        guard let limit else { return }
        idleTimer = eventLoop.scheduleTask(in: TimeAmount(limit)) { self.channel?.close(promise: nil) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        server.httpClosed(counted: counted)
        idleTimer?.cancel()
        if let pending {
            pending.call.stop(RPCError(code: .cancelled, message: "the HTTP client closed the connection"))
            server.scheduler.cancel(pending.call)
        }
        channel = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        defer { armIdleTimer() }
        guard !overLimit else {
            // Past --max-connections: the first request is answered 503 and the connection closed.
            if case .head(let head) = unwrapInboundIn(data), !refused {
                self.head = head
                refused = true
                let limit = server.configuration.maxConnections
                respond(status: .serviceUnavailable, json: Self.error("too many connections (\(limit) open, --max-connections); close idle ones or retry later", type: "server_error"), close: true)
            }
            return
        }
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            inRequest = true
            body = []
            refused = false
            if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > bodyLimit {
                refused = true
                respond(status: .payloadTooLarge, json: Self.error("the body of \(length) bytes is larger than \(bodyLimit) (the image limit, base64-encoded)", type: "invalid_request_error"), close: true)
            }
        case .body(var buffer):
            guard !refused else { return }
            if body.count + buffer.readableBytes > bodyLimit {
                refused = true
                respond(status: .payloadTooLarge, json: Self.error("the body is larger than \(bodyLimit) bytes", type: "invalid_request_error"), close: true)
                return
            }
            body += buffer.readBytes(length: buffer.readableBytes) ?? []
        case .end:
            guard !refused, let head else { return }
            inRequest = false
            route(head)
        }
    }

    // MARK: Routes

    private func route(_ head: HTTPRequestHead) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        guard permitted else {
            respond(status: .forbidden, json: Self.error("this peer's uid/gid is not allowed to call blip-captiond; ask its administrator to add it to --allow-uid/--allow-gid", type: "permission_error"), close: true)
            return
        }
        if let token = server.configuration.httpToken, path != "/healthz", path != "/readyz",
           head.headers.first(name: "authorization") != "Bearer \(token)" {
            respond(status: .unauthorized, json: Self.error("this endpoint needs Authorization: Bearer <token> (the daemon's --http-token-file)", type: "invalid_request_error", code: "invalid_api_key"))
            return
        }
        switch (head.method, path) {
        case (.GET, "/healthz"):
            respond(status: .ok, text: "ok\n")
        case (.GET, "/readyz"):
            server.isDraining ? respond(status: .serviceUnavailable, text: "draining\n") : respond(status: .ok, text: "ready\n")
        case (.GET, "/metrics"):
            respond(status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8", bytes: server.metrics.exposition(server))
        case (.GET, "/v1/models"):
            let id = server.scheduler.service.describe().modelID
            respond(status: .ok, json: ["object": "list", "data": [["id": id, "object": "model", "created": server.startedUnix, "owned_by": "blip-captiond"]]])
        case (.POST, "/v1/chat/completions"):
            chatCompletion()
        case (_, "/healthz"), (_, "/readyz"), (_, "/metrics"), (_, "/v1/models"), (_, "/v1/chat/completions"):
            respond(status: .methodNotAllowed, json: Self.error("\(head.method) is not allowed on \(path.bounded())", type: "invalid_request_error"))
        default:
            respond(status: .notFound, json: Self.error("no route \(path.bounded()); this daemon serves /healthz, /readyz, /metrics, /v1/models, /v1/chat/completions", type: "invalid_request_error"))
        }
    }

    private func chatCompletion() {
        let request: ChatCompletionRequest
        do {
            request = try ChatCompletionRequest(json: body)
        } catch {
            server.record(method: RPCMethod.caption.rawValue, .invalidArgument, latency: nil)
            respond(status: .badRequest, json: Self.error(error.message, type: "invalid_request_error"))
            return
        }
        let model = request.model ?? server.scheduler.service.describe().modelID
        // Text as it is generated (greedy decoding and sampling) goes out as events at once; the
        // engine's thread only hands it to the event loop.
        var onText: (@Sendable (Int, String) -> Void)?
        if request.stream {
            let loop = eventLoop
            onText = { [self] (_: Int, piece: String) in loop.execute { self.streamOnLoop(piece) } }
        }
        let call = Call(id: 0, request: request.caption, received: .now, timeout: nil, owner: self, onText: onText)
        pending = Exchange(call: call, stream: request.stream, model: model)
        guard !server.isDraining else {
            call.finish(.failure(RPCError(code: .unavailable, message: "the server is shutting down; retry later")))
            return
        }
        if let refusal = server.scheduler.submit(call) { call.finish(.failure(refusal)) }
    }

    func complete(_ call: Call, _ outcome: Result<CaptionResponse, RPCError>) {
        eventLoop.execute { self.completeOnLoop(call, outcome) }
    }

    /// One piece of a streamed caption: the first sends the 200 head and the role chunk.
    private func streamOnLoop(_ piece: String) {
        guard var exchange = pending, exchange.stream, let channel else { return }
        if !exchange.streaming {
            var headers = HTTPHeaders()
            headers.add(name: "content-type", value: "text/event-stream")
            headers.add(name: "cache-control", value: "no-cache")
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
        defer { armIdleTimer() }
        guard let exchange = pending, exchange.call === call else { return }
        pending = nil
        let latency = ContinuousClock.now - call.received
        let (id, created, model) = (exchange.id, exchange.created, exchange.model)
        switch outcome {
        case .success(let response):
            server.record(method: RPCMethod.caption.rawValue, .ok, latency: latency, response: response)
            if exchange.streaming {
                for (index, candidate) in response.candidates.enumerated() {
                    writeEvent(ChatCompletionReply.chunk(id: id, created: created, model: model, index: index, delta: [:],
                                                         finishReason: ChatCompletionReply.finishReason(candidate.finishReason)))
                }
                endStream()
            } else if exchange.stream {
                var text = ""
                for chunk in ChatCompletionReply.chunks(response, id: id, created: created, model: model) {
                    text += "data: " + Self.jsonText(chunk) + "\n\n"
                }
                text += "data: [DONE]\n\n"
                respond(status: .ok, contentType: "text/event-stream", bytes: Array(text.utf8))
            } else {
                respond(status: .ok, json: ChatCompletionReply.body(response, id: id, created: created, model: model))
            }
        case .failure(let error):
            server.record(method: RPCMethod.caption.rawValue, error.code, latency: latency)
            let (status, type) = Self.httpStatus(error.code)
            let body = Self.error(error.message, type: type, code: error.code.name)
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
        let done = channel.eventLoop.makePromise(of: Void.self)
        channel.writeAndFlush(wrapOutboundOut(.end(nil)), promise: done)
        closeWhenWritten(done.futureResult, keepAlive: head?.isKeepAlive ?? false)
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

    static func error(_ message: String, type: String, code: String? = nil) -> [String: Any] {
        ["error": ["message": message, "type": type, "param": NSNull(), "code": code.map { $0 as Any } ?? NSNull()]]
    }

    static func jsonText(_ object: [String: Any]) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    private func respond(status: HTTPResponseStatus, json: [String: Any], close: Bool = false) {
        respond(status: status, contentType: "application/json", bytes: Array(Self.jsonText(json).utf8), close: close)
    }

    private func respond(status: HTTPResponseStatus, text: String) {
        respond(status: status, contentType: "text/plain; charset=utf-8", bytes: Array(text.utf8))
    }

    private func respond(status: HTTPResponseStatus, contentType: String, bytes: [UInt8], close: Bool = false) {
        guard let channel else { return }
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: contentType)
        headers.add(name: "content-length", value: "\(bytes.count)")
        if close { headers.add(name: "connection", value: "close") }
        let version = head?.version ?? .http1_1
        channel.write(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: status, headers: headers))), promise: nil)
        channel.write(wrapOutboundOut(.body(.byteBuffer(channel.channel.allocator.buffer(bytes: bytes)))), promise: nil)
        let done = channel.eventLoop.makePromise(of: Void.self)
        channel.writeAndFlush(wrapOutboundOut(.end(nil)), promise: done)
        closeWhenWritten(done.futureResult, keepAlive: !close && (head?.isKeepAlive ?? false))
    }

    /// Closes the connection once `written` completes, unless it is kept alive.
    private func closeWhenWritten(_ written: EventLoopFuture<Void>, keepAlive: Bool) {
        guard !keepAlive, let connection = channel?.channel else { return }
        written.whenComplete { _ in connection.close(promise: nil) }
    }
}
