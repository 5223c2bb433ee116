import BLIPProtocol
@testable import BLIPServer
import BLIPTestSupport
import Foundation
import Glibc
import Testing

/// Issue 20: the server's edges against ordinary and hostile HTTP clients — every connection is
/// gated (counted, timed, closed on half-close), every refusal comes from the request head, work
/// nobody waits for is cancelled, and start-up and reload leave nothing behind.
@Suite struct ServerEdgeTests {
    /// Bytes from `client` until `done` holds for what was read (or the peer closes).
    static func read(_ client: RawClient, timeout: Double = 5, until done: ([UInt8]) -> Bool) throws -> String {
        let deadline = Date(timeIntervalSinceNow: timeout)
        var bytes: [UInt8] = []
        while !done(bytes) {
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { throw TestFailure(description: "no whole answer within \(timeout) s: \(String(decoding: bytes, as: UTF8.self))") }
            var polled = pollfd(fd: client.fd, events: Int16(POLLIN), revents: 0)
            guard poll(&polled, 1, Int32(left * 1000) + 1) > 0 else { continue }
            var buffer = [UInt8](repeating: 0, count: 65536)
            let count = buffer.withUnsafeMutableBytes { Glibc.read(client.fd, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            bytes += buffer[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// One whole HTTP/1.1 answer with a `content-length` (the connection stays open).
    static func readAnswer(_ client: RawClient, timeout: Double = 5) throws -> String {
        try read(client, timeout: timeout) { bytes in
            let text = String(decoding: bytes, as: UTF8.self)
            guard let end = text.range(of: "\r\n\r\n") else { return false }
            let head = text[..<end.lowerBound].lowercased()
            guard let line = head.split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") }),
                  let length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) else { return true }
            return text[end.upperBound...].utf8.count >= length
        }
    }

    static func chatBody(maxTokens: Int) -> String {
        HTTPFaceTests.chat(extra: #", "max_tokens": \#(maxTokens)"#)
    }

    static func post(_ body: String, headers: String = "") -> [UInt8] {
        Array("POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\(headers)Content-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8)
    }

    static func metric(_ http: String, _ line: String) throws -> String? {
        let body = try HTTPFaceTests.request(http, "GET", "/metrics").body
        return body.split(separator: "\n").first { $0.hasPrefix(line) }.map(String.init)
    }

    /// Before: each keep-alive client that closed after its request left the server side open
    /// until --idle-timeout, so the 17th of them (and every RPC caller) was refused.
    @Test func keepAliveClientsThatCloseLeaveNoConnectionBehind() throws {
        let (server, http) = try HTTPFaceTests.server { $0.maxConnections = 16 }
        for index in 0..<40 {
            let client = try RawClient(path: http)
            try client.sendRaw(Array("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n".utf8))
            let answer = try Self.readAnswer(client)
            #expect(answer.hasPrefix("HTTP/1.1 200"), "client \(index): \(answer)")
        }  // each client closes as it goes out of scope
        let rpc = try server.connect()
        #expect(try rpc.health() == .serving)
        #expect(try HTTPFaceTests.request(http, "GET", "/healthz").status == 200)
        // Every closed client is gone: the only HTTP connection open is the scrape itself.
        let name = #"blip_captiond_connections_open{protocol="http"}"#
        var open: Double?
        let until = Date(timeIntervalSinceNow: 2)
        repeat {
            open = try Self.metric(http, name).flatMap { Double($0.dropFirst(name.count).trimmingCharacters(in: .whitespaces)) }
        } while open != 1 && Date() < until
        #expect(open == 1)
    }

    /// Before: the timer for an unfinished request started only after a whole head, so peers
    /// that never finished one held their connections until --idle-timeout.
    @Test func peersThatNeverFinishAHeadAreClosedAfterThePartialRequestTimeout() throws {
        let (server, http) = try HTTPFaceTests.server {
            $0.maxConnections = 400
            $0.partialFrameTimeout = .seconds(1)
        }
        let slow = try (0..<300).map { _ in
            let client = try RawClient(path: http)
            try client.sendRaw(Array("GET /healthz HTTP/1.1\r\nHost: t".utf8))
            return client
        }
        let start = Date()
        let rpc = try server.connect()
        #expect(try rpc.health() == .serving)
        #expect(try HTTPFaceTests.request(http, "GET", "/healthz").status == 200)
        let stillOpen = slow.filter { !$0.closedByPeer(within: 3 - Date().timeIntervalSince(start)) }.count
        #expect(stillOpen == 0, "\(stillOpen) of 300 peers with an unfinished head still open after 3 s")
        #expect(try rpc.health() == .serving)
    }

    /// Before: the body (40 MB here) was read whole before the token was checked.
    @Test func anUnauthenticatedLargePostIsRefusedFromItsHead() throws {
        let (server, http) = try HTTPFaceTests.server { $0.httpToken = "s3cret" }
        defer { withExtendedLifetime(server) {} }
        let client = try RawClient(path: http)
        try client.sendRaw(Array("POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 40000000\r\n\r\n".utf8))
        let answer = String(decoding: try client.readAll(timeout: 3), as: UTF8.self)
        #expect(answer.hasPrefix("HTTP/1.1 401"), "\(answer)")
        #expect(answer.lowercased().contains("connection: close"))
    }

    /// Before: the caption of a client that went away ran on, and the next caller waited for it.
    @Test func anHTTPClientThatDisconnectsCancelsItsCaption() throws {
        let service = FakeService(stepTime: .milliseconds(50))
        let (server, http) = try HTTPFaceTests.server(service: service)
        do {
            let client = try RawClient(path: http)
            try client.sendRaw(Self.post(Self.chatBody(maxTokens: 100)))  // 5 s of fake steps
            Thread.sleep(forTimeInterval: 0.3)
            #expect(service.record.withLock { $0.busy } == 1)
        }  // the client closes here
        let closed = Date()
        while service.record.withLock({ $0.busy }) > 0, Date().timeIntervalSince(closed) < 3 { usleep(5_000) }
        let freed = Date().timeIntervalSince(closed)
        print("anHTTPClientThatDisconnectsCancelsItsCaption: engine freed \(Int(freed * 1000)) ms after the client closed")
        #expect(freed < 0.5)
        #expect(service.record.withLock { $0.stoppedByCheckpoint } == [.cancelled])
        let rpc = try server.connect()
        let asked = Date()
        try rpc.caption(1)
        #expect(try rpc.receive(timeout: 5)?.statusCode == .ok)
        #expect(Date().timeIntervalSince(asked) < 1, "the next caller waited for the abandoned caption")
    }

    /// HTTP captions have a deadline: the server's (`httpRequestTimeout`) or `X-Request-Timeout`.
    @Test func httpCaptionsHaveADeadline() throws {
        let service = FakeService(stepTime: .milliseconds(50))
        let (server, http) = try HTTPFaceTests.server(service: service) { $0.httpRequestTimeout = .milliseconds(400) }
        defer { withExtendedLifetime(server) {} }
        func caption(_ headers: String) throws -> (String, Double) {
            let client = try RawClient(path: http)
            let start = Date()
            try client.sendRaw(Self.post(Self.chatBody(maxTokens: 100), headers: headers))
            return (try Self.readAnswer(client, timeout: 10), Date().timeIntervalSince(start))
        }
        let (byServer, serverTime) = try caption("")
        #expect(byServer.hasPrefix("HTTP/1.1 504"), "\(byServer)")
        #expect(serverTime < 1.5)
        let (byHeader, headerTime) = try caption("X-Request-Timeout: 0.15\r\n")
        #expect(byHeader.hasPrefix("HTTP/1.1 504"), "\(byHeader)")
        #expect(headerTime < serverTime)
        let (bad, _) = try caption("X-Request-Timeout: soon\r\n")
        #expect(bad.hasPrefix("HTTP/1.1 400") && bad.contains("X-Request-Timeout"), "\(bad)")
    }

    /// Before: `--idle-exit` counted RPC connections only and exited mid-upload.
    @Test func idleExitWaitsForAnHTTPUploadInProgress() throws {
        let (server, http) = try HTTPFaceTests.server { $0.idleExit = .seconds(2) }
        let client = try RawClient(path: http)
        let body = Array(Self.chatBody(maxTokens: 2).utf8)
        try client.sendRaw(Array("POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n\r\n".utf8))
        let pieces = 6
        let size = (body.count + pieces - 1) / pieces
        for start in stride(from: 0, to: body.count, by: size) {
            Thread.sleep(forTimeInterval: 0.5)  // 3 s in all
            try client.sendRaw(Array(body[start..<min(start + size, body.count)]))
        }
        let answer = try Self.readAnswer(client)
        #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer)")
        #expect(server.waitForExit(timeout: 5) == .idle)
    }

    /// Before: a reloaded engine's cache counters, which start again at 0, were not counted until
    /// they passed the old engine's.
    @Test func featureCacheCountersKeepCountingAfterAReload() throws {
        let (server, http) = try HTTPFaceTests.server()
        server.service.featureCache.withLock { $0.hits = 5; $0.misses = 7 }
        #expect(try Self.metric(http, "blip_captiond_feature_cache_hits_total") == "blip_captiond_feature_cache_hits_total 5")
        let reloaded = FakeService(modelID: "fake/reloaded")
        server.server.replaceService(reloaded)
        reloaded.featureCache.withLock { $0.hits = 2; $0.misses = 1 }
        #expect(try Self.metric(http, "blip_captiond_feature_cache_hits_total") == "blip_captiond_feature_cache_hits_total 7")
        #expect(try Self.metric(http, "blip_captiond_feature_cache_misses_total") == "blip_captiond_feature_cache_misses_total 8")
    }

    /// Before: the first model's `build_info` stayed beside the reloaded one's.
    @Test func metricsAfterAReloadDescribeTheServedModelOnly() throws {
        let (server, http) = try HTTPFaceTests.server()
        #expect(try Self.metric(http, "blip_captiond_build_info")?.contains(#"model_id="fake/blip""#) == true)
        server.server.replaceService(FakeService(modelID: "fake/reloaded"))
        let body = try HTTPFaceTests.request(http, "GET", "/metrics").body
        let series = body.split(separator: "\n").filter { $0.hasPrefix("blip_captiond_build_info") }
        #expect(series.count == 1 && series[0].contains(#"model_id="fake/reloaded""#), "\(series)")
    }

    /// Before: HTTP answers piled up for a client that pipelined requests and never read them.
    /// Now the gate stops reading it once its answers pass the outgoing bound and drops it after
    /// --send-grace-period; everyone else is served meanwhile.
    @Test func aPipeliningClientThatNeverReadsDelaysNoOneAndIsDropped() throws {
        let (server, http) = try HTTPFaceTests.server { $0.sendGracePeriod = .seconds(1) }
        let hog = try RawClient(path: http)
        let flood = Array(repeating: Array("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n".utf8), count: 10_000).flatMap { $0 }
        let fd = hog.fd  // written from the sender thread only; `hog` outlives it (closedByPeer below)
        let sender = Thread {
            for _ in 0..<100 {  // a million requests
                var offset = 0
                while offset < flood.count {
                    let written = flood.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
                    guard written > 0 else { return }
                    offset += written
                }
            }
        }
        sender.start()
        let rpc = try server.connect()
        var worst = 0.0
        let start = Date()
        while Date().timeIntervalSince(start) < 2.5 {
            let asked = Date()
            #expect(try rpc.health() == .serving)
            worst = max(worst, Date().timeIntervalSince(asked))
            usleep(20_000)
        }
        print("aPipeliningClientThatNeverReadsDelaysNoOneAndIsDropped: slowest Health beside the flood \(Int(worst * 1000)) ms")
        #expect(worst < 0.25)
        #expect(server.logLines.all.contains { $0.contains("client stopped reading") }, "\(server.logLines.all.suffix(5))")
        #expect(hog.closedByPeer(within: 5))
    }

    /// The chat body is decoded by type: a field of the wrong type is named, not ignored.
    @Test(arguments: [
        (#", "max_tokens": "ten""#, "Invalid type for 'max_tokens': expected an integer."),
        (#", "temperature": true"#, "Invalid type for 'temperature': expected a number."),
        (#", "stream": "yes""#, "Invalid type for 'stream': expected a boolean."),
        (#", "tools": []"#, "tools is not supported"),
    ])
    func chatFieldsOfTheWrongTypeAreNamed(extra: String, message: String) throws {
        #expect(throws: (any Error).self) { try ChatCompletionRequest(json: Array(HTTPFaceTests.chat(extra: extra).utf8)) }
        do {
            _ = try ChatCompletionRequest(json: Array(HTTPFaceTests.chat(extra: extra).utf8))
        } catch {
            #expect(error.message.contains(message), "\(error.message)")
        }
        // The same body without the extra field is fine.
        #expect(try ChatCompletionRequest(json: Array(HTTPFaceTests.chat().utf8)).caption.image.format == .png)
    }

    /// Large Caption requests are decoded off the event loop; they are answered as any other,
    /// also after the client shuts its write side.
    @Test func largeRequestsDecodedElsewhereAreAnswered() throws {
        let server = try TestServer()
        let client = try server.connect()
        let image = [UInt8](repeating: 1, count: 1 << 20)
        let big = CaptionRequest(image: .init(data: image), options: DecodingOptions(maxNewTokens: 1))
        try client.send(.request(callID: 1, method: .caption, message: big))
        try client.caption(2, steps: 1)
        shutdown(client.fd, Int32(SHUT_WR))
        let answers = try client.receive(count: 2)
        #expect(try answers[1]?.caption().candidates.first?.text == "a picture of \(image.count) bytes")
        #expect(answers[2]?.statusCode == .ok)
        #expect(client.closedByPeer(within: 2))
    }

    /// RFC 9112 §6.1: a request with both Content-Length and Transfer-Encoding is a framing error;
    /// the server answers 400 and closes the connection (nothing after it is read as a request).
    @Test func anHTTPFramingErrorClosesTheConnection() throws {
        let (server, http) = try HTTPFaceTests.server()
        defer { withExtendedLifetime(server) {} }
        let client = try RawClient(path: http)
        try client.sendRaw(Array("POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: t\r\n\r\n".utf8))
        let answer = String(decoding: try client.readAll(timeout: 3), as: UTF8.self)
        #expect(answer.hasPrefix("HTTP/1.1 400"), "\(answer)")
        #expect(!answer.contains("200 OK"), "a request after the framing error was served: \(answer)")
    }

    /// Before: a peer the allow-lists refuse had its whole first frame (up to --max-frame-bytes)
    /// buffered before it was refused. Now a frame larger than a small request is refused from its
    /// length prefix, and only small ones are read for their call id.
    @Test func aRefusedPeersLargeFrameIsRefusedFromItsPrefix() throws {
        let server = try TestServer { $0.allowedUIDs = [getuid() &+ 1] }
        let peer = try server.connect()
        try peer.sendRaw(RawClient.prefix(32 << 20) + [UInt8](repeating: 0, count: 128 << 10))
        let answer = try #require(try peer.receive(timeout: 2))
        #expect(answer.callID == 0 && answer.statusCode == .permissionDenied, "got \(answer.statusCode)")
        #expect(try peer.receive() == nil, "a refused peer's connection must be closed")
    }
}
