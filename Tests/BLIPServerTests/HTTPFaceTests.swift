import BLIPProtocol
@testable import BLIPServer
import BLIPTestSupport
import Foundation
import Testing

/// The HTTP face on a Unix socket, against the fake engine: probes, metrics, the OpenAI-compatible
/// endpoints and their error mapping.
@Suite struct HTTPFaceTests {
    struct Reply {
        var status: Int
        var headers: String
        var body: String
        var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] }
    }

    /// One HTTP/1.1 exchange with `Connection: close`.
    static func request(_ path: String, _ method: String = "GET", _ url: String, body: String = "", token: String? = nil,
                        headers: String = "") throws -> Reply {
        let client = try RawClient(path: path)
        var text = "\(method) \(url) HTTP/1.1\r\nHost: test\r\nConnection: close\r\n" + headers
        if let token { text += "Authorization: Bearer \(token)\r\n" }
        if !body.isEmpty { text += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n" }
        try client.sendRaw(Array((text + "\r\n" + body).utf8))
        let raw = String(decoding: try client.readAll(timeout: 10), as: UTF8.self)
        let parts = raw.components(separatedBy: "\r\n\r\n")
        let statusLine = parts[0].split(separator: "\r\n").first ?? ""
        let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "") ?? 0
        return Reply(status: status, headers: parts[0], body: parts.dropFirst().joined(separator: "\r\n\r\n"))
    }

    static func server(service: FakeService = FakeService(), _ configure: (inout ServerConfiguration) -> Void = { _ in }) throws -> (TestServer, String) {
        let server = try TestServer(service: service, http: true, configure: configure)
        let http = server.httpPath
        let deadline = Date(timeIntervalSinceNow: 5)
        while !FileManager.default.fileExists(atPath: http), Date() < deadline { usleep(5_000) }
        return (server, http)
    }

    static func chat(image: String = "data:image/png;base64,iVBORw0KGgo=", text: String? = nil, extra: String = "") -> String {
        let textPart = text.map { #", {"type": "text", "text": "\#($0)"}"# } ?? ""
        return #"{"model": "blip", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "\#(image)"}}\#(textPart)]}]\#(extra)}"#
    }

    @Test func probesAnswerWithoutTheEngine() throws {
        let (server, http) = try Self.server()
        #expect(try Self.request(http, "GET", "/healthz").status == 200)
        #expect(try Self.request(http, "GET", "/readyz").status == 200)
        #expect(try Self.request(http, "GET", "/nope").status == 404)
        #expect(try Self.request(http, "POST", "/healthz").status == 405)
        #expect(server.service.record.withLock { $0.started } == 0)
    }

    @Test func metricsCountCallsInThePrometheusTextFormat() throws {
        let (server, http) = try Self.server()
        let client = try server.connect()
        try client.caption(1)
        #expect(try client.receive()?.statusCode == .ok)
        try client.send(.request(callID: 2, method: .healthCheck, message: HealthCheckRequest()))
        _ = try client.receive()
        let metrics = try Self.request(http, "GET", "/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.headers.contains("text/plain; version=0.0.4"))
        let body = metrics.body
        #expect(body.contains(#"blip_captiond_requests_total{method="/blip.v1.Captioner/Caption",code="OK"} 1"#), "\(body)")
        #expect(body.contains(#"blip_captiond_requests_total{method="/blip.v1.Health/Check",code="OK"} 1"#))
        #expect(body.contains("blip_captiond_caption_duration_seconds_count 1"))
        #expect(body.contains("# HELP blip_captiond_queue_depth"))
        #expect(body.contains(#"blip_captiond_build_info{version="test",model_id="fake/blip",model_revision="",weights="",instruction_path=""} 1"#), "\(body)")
        if RequiredTool.promtool.runs {
            let promtool = try ProcessOutput.run(RequiredTool.promtool.rawValue, ["check", "metrics"], stdin: Data(body.utf8))
            let said = promtool.stdout + promtool.stderr
            #expect(promtool.status == 0 && said.isEmpty, "promtool check metrics: \(said)")
        }
    }

    @Test func chatCompletionsCaptionTheImage() throws {
        let (server, http) = try Self.server()
        let reply = try Self.request(http, "POST", "/v1/chat/completions", body: Self.chat(text: "a picture of"))
        #expect(reply.status == 200, "\(reply.body)")
        let json = try #require(reply.json)
        #expect(json["object"] as? String == "chat.completion")
        let choice = try #require((json["choices"] as? [[String: Any]])?.first)
        let message = try #require(choice["message"] as? [String: Any])
        // The fake engine echoes the prompt and the image's byte count (8 PNG signature bytes).
        #expect(message["content"] as? String == "a picture of of 8 bytes")
        #expect(choice["finish_reason"] as? String == "stop")
        #expect((json["usage"] as? [String: Any])?["total_tokens"] as? Int == 3)
        let models = try #require(try Self.request(http, "GET", "/v1/models").json)
        #expect(((models["data"] as? [[String: Any]])?.first?["id"]) as? String == "fake/blip")
        #expect(server.service.record.withLock { $0.completed } == 1)
    }

    @Test func streamingAnswersAsServerSentEvents() throws {
        let (server, http) = try Self.server()
        defer { withExtendedLifetime(server) {} }
        let reply = try Self.request(http, "POST", "/v1/chat/completions", body: Self.chat(extra: #", "stream": true"#))
        #expect(reply.status == 200)
        #expect(reply.headers.contains("text/event-stream"))
        let events = reply.body.components(separatedBy: "\n\n").filter { $0.hasPrefix("data: ") }
        #expect(events.last == "data: [DONE]")
        #expect(reply.body.contains(#""content":"a picture of 8 bytes""#), "\(reply.body)")
    }

    /// The `data:` events of a streamed reply, its chunked framing undone.
    static func events(_ reply: Reply) -> [String] {
        var body = reply.body
        if reply.headers.lowercased().contains("transfer-encoding: chunked") {
            var rest = Array(body.utf8)[...], joined: [UInt8] = []
            let crlf = Array("\r\n".utf8)
            while let line = rest.firstRange(of: crlf),
                  let size = Int(String(decoding: rest[..<line.lowerBound], as: UTF8.self), radix: 16), size > 0 {
                joined += rest[line.upperBound..<line.upperBound + size]
                rest = rest[(line.upperBound + size + 2)...]
            }
            body = String(decoding: joined, as: UTF8.self)
        }
        return body.components(separatedBy: "\n\n").filter { $0.hasPrefix("data: ") }.map { String($0.dropFirst(6)) }
    }

    /// Greedy decoding streams one content event per piece the engine hands out, as it is
    /// generated; the pieces concatenate to the caption; then the finish event and `[DONE]`.
    @Test func greedyStreamingSendsAnEventPerPiece() throws {
        let (server, http) = try Self.server()
        defer { withExtendedLifetime(server) {} }
        let reply = try Self.request(http, "POST", "/v1/chat/completions", body: Self.chat(extra: #", "stream": true, "temperature": 0"#))
        #expect(reply.status == 200)
        let events = Self.events(reply)
        #expect(events.last == "[DONE]", "\(reply.headers)\n\n\(reply.body)")
        let chunks = events.dropLast().compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
        let deltas = chunks.compactMap { (($0["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any]) }
        let contents = deltas.compactMap { $0["content"] as? String }
        #expect(deltas.first?["role"] as? String == "assistant")
        // The fake engine hands out "a picture of 8 bytes" word by word.
        #expect(contents.filter { !$0.isEmpty } == ["a", " picture", " of", " 8", " bytes"], "\(events)")
        #expect(contents.joined() == "a picture of 8 bytes")
        let finish = chunks.last.flatMap { ($0["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String }
        #expect(finish == "stop")
    }

    /// HTTP connections count against `--max-connections` with the RPC ones: past the limit an
    /// HTTP client gets a 503 naming the flag, and `/metrics` reports both kinds.
    @Test func httpConnectionsCountAgainstMaxConnections() throws {
        let (server, http) = try Self.server { $0.maxConnections = 2 }
        defer { withExtendedLifetime(server) {} }
        let rpc = try server.connect()
        try rpc.caption(1)
        #expect(try rpc.receive()?.statusCode == .ok)
        var held: RawClient? = try RawClient(path: http)  // an idle HTTP connection holds the second place
        usleep(100_000)
        let refused = try Self.request(http, "GET", "/healthz")
        #expect(refused.status == 503, "\(refused.headers)")
        #expect(refused.body.contains("--max-connections"))
        withExtendedLifetime(held) {}
        held = nil
        usleep(100_000)
        let metrics = try Self.request(http, "GET", "/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.body.contains(#"blip_captiond_connections_open{protocol="rpc"} 1"#), "\(metrics.body)")
        #expect(metrics.body.contains(#"blip_captiond_connections_open{protocol="http"} 1"#))
        #expect(metrics.body.contains("blip_captiond_captions_in_flight 0"))
    }

    /// `--http-listen HOST:PORT` serves on TCP through the same acceptor as the Unix sockets.
    @Test func tcpListenerServesTheProbes() throws {
        let probe = try ListeningSocket.bind(host: "127.0.0.1", port: 0)
        var address = sockaddr_in(), length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(probe.fileDescriptor, $0, &length) } }
        let port = Int(UInt16(bigEndian: address.sin_port))
        probe.close()
        let server = try TestServer(httpAddress: "127.0.0.1:\(port)")
        defer { withExtendedLifetime(server) {} }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var target = sockaddr_in()
        target.sin_family = sa_family_t(AF_INET)
        target.sin_port = UInt16(port).bigEndian
        target.sin_addr.s_addr = inet_addr("127.0.0.1")
        var connected: Int32 = -1
        for _ in 0..<100 {
            connected = withUnsafePointer(to: &target) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            if connected == 0 { break }
            usleep(20_000)
        }
        try #require(connected == 0, "cannot connect to 127.0.0.1:\(port)")
        let client = RawClient(adopting: fd)
        try client.sendRaw(Array("GET /readyz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".utf8))
        let raw = String(decoding: try client.readAll(timeout: 10), as: UTF8.self)
        #expect(raw.hasPrefix("HTTP/1.1 200"), "\(raw)")
    }

    @Test func unsupportedRequestsAreRefusedByName() throws {
        let (server, http) = try Self.server { $0.queueDepth = 1 }
        let url = try Self.request(http, "POST", "/v1/chat/completions", body: Self.chat(image: "https://example.com/cat.jpg"))
        #expect(url.status == 400)
        #expect(((url.json?["error"] as? [String: Any])?["message"] as? String)?.contains("fetches nothing") == true, "\(url.body)")
        let tools = try Self.request(http, "POST", "/v1/chat/completions", body: Self.chat(extra: #", "tools": []"#))
        #expect(tools.status == 400)
        #expect(tools.body.contains("tools is not supported"))
        let garbage = try Self.request(http, "POST", "/v1/chat/completions", body: "{not json")
        #expect(garbage.status == 400)
        // A full queue is 429: occupy the one place with a slow RPC caption first.
        let client = try server.connect()
        try client.caption(1, steps: 200)
        Thread.sleep(forTimeInterval: 0.05)
        let busy = try Self.request(http, "POST", "/v1/chat/completions", body: Self.chat())
        #expect(busy.status == 429, "\(busy.body)")
        let deadline = Date(timeIntervalSinceNow: 2)
        while server.service.record.withLock({ $0.started }) < 1, Date() < deadline { usleep(5_000) }
        #expect(server.service.record.withLock { $0.started } == 1, "only the RPC caption runs")
    }

    @Test func bodiesAreRefusedEarlyByContentLength() throws {
        let (server, http) = try Self.server { $0.maxFrameBytes = 4096 }
        defer { withExtendedLifetime(server) {} }
        let client = try RawClient(path: http)
        try client.sendRaw(Array("POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Length: 100000000\r\n\r\n".utf8))
        let raw = String(decoding: try client.readAll(timeout: 5), as: UTF8.self)
        #expect(raw.hasPrefix("HTTP/1.1 413"), "\(raw)")
    }

    @Test func aTokenGuardsEverythingButTheProbes() throws {
        let (server, http) = try Self.server { $0.httpToken = "s3cret" }
        defer { withExtendedLifetime(server) {} }
        #expect(try Self.request(http, "GET", "/healthz").status == 200)
        #expect(try Self.request(http, "GET", "/readyz").status == 200)
        #expect(try Self.request(http, "GET", "/metrics").status == 401)
        #expect(try Self.request(http, "GET", "/metrics", token: "wrong").status == 401)
        #expect(try Self.request(http, "GET", "/metrics", token: "s3cret").status == 200)
        #expect(try Self.request(http, "POST", "/v1/chat/completions", body: Self.chat(), token: "s3cret").status == 200)
    }

    @Test func theAllowListsApplyOnAUnixHTTPSocket() throws {
        let (server, http) = try Self.server { $0.allowedUIDs = [getuid() &+ 1] }
        defer { withExtendedLifetime(server) {} }
        #expect(try Self.request(http, "GET", "/metrics").status == 403)
        #expect(server.service.record.withLock { $0.started } == 0)
    }

    @Test func idleHTTPConnectionsClose() throws {
        let (server, http) = try Self.server { $0.idleTimeout = .milliseconds(200) }
        defer { withExtendedLifetime(server) {} }
        let idle = try RawClient(path: http)
        #expect(idle.closedByPeer(within: 2), "an idle HTTP connection must close after --idle-timeout")
    }
}
