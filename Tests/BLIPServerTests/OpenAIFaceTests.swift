import BLIPProtocol
@testable import BLIPServer
import BLIPTestSupport
import Foundation
import Testing

/// `/v1/chat/completions` behaving as OpenAI's API does: errors naming the field in OpenAI's terms,
/// the model checked, `stop`, `stream_options.include_usage`, `X-Request-Id`, `Retry-After` and
/// `Expect: 100-continue`. Against the fake engine, which captions "a picture of N bytes".
@Suite struct OpenAIFaceTests {
    static func post(_ http: String, _ extra: String = "", text: String? = nil, headers: String = "") throws -> HTTPFaceTests.Reply {
        try HTTPFaceTests.request(http, "POST", "/v1/chat/completions", body: HTTPFaceTests.chat(text: text, extra: extra), headers: headers)
    }

    static func error(_ reply: HTTPFaceTests.Reply) -> [String: Any] { reply.json?["error"] as? [String: Any] ?? [:] }

    /// Fields of the wrong type or range: 400, `invalid_request_error`, `param` the field, a message
    /// in OpenAI's words, and nothing reaches the engine. (Before: all answered 200 as if absent,
    /// or with transformers' names and `param: null`.)
    @Test(arguments: [
        (#", "n": "2""#, "n", "Invalid type for 'n': expected an integer."),
        (#", "n": 1.5"#, "n", "Invalid type for 'n': expected an integer."),
        (#", "n": 0"#, "n", "Invalid 'n': integer below minimum value. Expected a value >= 1, but got 0 instead."),
        (#", "n": 9"#, "n", "Invalid 'n': integer above maximum value. Expected a value <= 8, but got 9 instead."),
        (#", "max_tokens": "2""#, "max_tokens", "Invalid type for 'max_tokens': expected an integer."),
        (#", "max_tokens": 0"#, "max_tokens", "Invalid 'max_tokens': integer below minimum value. Expected a value >= 1, but got 0 instead."),
        (#", "max_completion_tokens": 600"#, "max_completion_tokens", "Invalid 'max_completion_tokens': integer above maximum value. Expected a value <= 511, but got 600 instead."),
        (#", "temperature": -1"#, "temperature", "Invalid 'temperature': decimal below minimum value. Expected a value >= 0, but got -1 instead."),
        (#", "temperature": 2.5"#, "temperature", "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got 2.5 instead."),
        (#", "top_p": 1.5"#, "top_p", "Invalid 'top_p': decimal above maximum value. Expected a value <= 1, but got 1.5 instead."),
        (#", "stream": "yes""#, "stream", "Invalid type for 'stream': expected a boolean."),
        (#", "stop": 3"#, "stop", "Invalid type for 'stop': expected a string or an array of strings."),
        (#", "stop": ["a", "b", "c", "d", "e"]"#, "stop", "Invalid 'stop': array too long. Expected an array with maximum length 4, but got an array with length 5 instead."),
        (#", "stream_options": {"include_usage": "yes"}"#, "stream_options.include_usage", "Invalid type for 'stream_options.include_usage': expected a boolean."),
    ])
    func wrongTypesAndRangesAreNamedAsOpenAINamesThem(extra: String, param: String, message: String) throws {
        let (server, http) = try HTTPFaceTests.server()
        let reply = try Self.post(http, extra)
        #expect(reply.status == 400, "\(reply.body)")
        let error = Self.error(reply)
        #expect(error["type"] as? String == "invalid_request_error")
        #expect(error["param"] as? String == param, "\(reply.body)")
        #expect(error["message"] as? String == message, "\(reply.body)")
        #expect(server.service.record.withLock { $0.started } == 0)
    }

    /// `model` must be one the daemon serves: its id or an alias `/v1/models` lists.
    @Test func anUnknownModelIsNotFound() throws {
        let (server, http) = try HTTPFaceTests.server()
        defer { withExtendedLifetime(server) {} }
        let models = try #require(try HTTPFaceTests.request(http, "GET", "/v1/models").json)
        let ids = (models["data"] as? [[String: Any]])?.compactMap { $0["id"] as? String }
        #expect(ids == ["fake/blip", "blip"])
        for id in ["fake/blip", "blip"] {
            let reply = try HTTPFaceTests.request(http, "POST", "/v1/chat/completions",
                                                  body: HTTPFaceTests.chat().replacingOccurrences(of: #""model": "blip""#, with: #""model": "\#(id)""#))
            #expect(reply.status == 200, "\(id): \(reply.body)")
            #expect(reply.json?["model"] as? String == id)
        }
        let gpt = try HTTPFaceTests.request(http, "POST", "/v1/chat/completions",
                                            body: HTTPFaceTests.chat().replacingOccurrences(of: #""model": "blip""#, with: #""model": "gpt-4o""#))
        #expect(gpt.status == 404, "\(gpt.body)")
        #expect(Self.error(gpt)["code"] as? String == "model_not_found")
        #expect(Self.error(gpt)["param"] as? String == "model")
        #expect((Self.error(gpt)["message"] as? String)?.hasPrefix("The model `gpt-4o` does not exist") == true)
    }

    /// `stop` ends the caption before the first stop text, with `finish_reason: "stop"`, whole or streamed.
    @Test func stopEndsTheCaption() throws {
        let (server, http) = try HTTPFaceTests.server()
        defer { withExtendedLifetime(server) {} }
        let whole = try Self.post(http, #", "stop": ["8 by", "zebra"]"#)
        let choice = try #require((whole.json?["choices"] as? [[String: Any]])?.first, "\(whole.body)")
        #expect((choice["message"] as? [String: Any])?["content"] as? String == "a picture of ")
        #expect(choice["finish_reason"] as? String == "stop")

        let streamed = try Self.post(http, #", "stream": true, "temperature": 0, "stop": "of 8""#)
        let chunks = HTTPFaceTests.events(streamed).dropLast().compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
        let contents = chunks.compactMap { (($0["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any])?["content"] as? String }
        #expect(contents.joined() == "a picture ", "\(streamed.body)")
        #expect(chunks.last.flatMap { ($0["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String } == "stop")

        let none = try Self.post(http, #", "stop": "zebra""#)
        let untouched = try #require((none.json?["choices"] as? [[String: Any]])?.first)
        #expect((untouched["message"] as? [String: Any])?["content"] as? String == "a picture of 8 bytes")
    }

    /// The stop scanner holds back a tail that may still become a stop text, and releases it when it does not.
    @Test func stopSequencesHoldBackOnlyWhatMayStillStop() {
        var scanner = StopSequences(["of 8"])
        #expect(scanner.take("a picture") == "a picture")
        #expect(scanner.take(" o") == " ", "\" o\" may begin \"of 8\"")
        #expect(scanner.take("f 9") == "of 9")
        #expect(scanner.take(" bytes of", final: true) == " bytes of")
        var stopping = StopSequences(["of 8"])
        #expect(stopping.take("a picture of") == "a picture ")
        #expect(stopping.take(" 8 bytes") == "")
        #expect(stopping.stopped)
    }

    /// `stream_options.include_usage` sends a last chunk with the usage and no choices, before `[DONE]`.
    @Test(arguments: [#", "temperature": 0"#, ""])
    func includeUsageSendsTheUsageChunk(search: String) throws {
        let (server, http) = try HTTPFaceTests.server()
        defer { withExtendedLifetime(server) {} }
        let reply = try Self.post(http, #", "stream": true, "stream_options": {"include_usage": true}"# + search)
        let events = HTTPFaceTests.events(reply)
        #expect(events.last == "[DONE]")
        let last = try #require(events.dropLast().last.flatMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] })
        #expect((last["choices"] as? [Any])?.isEmpty == true, "\(last)")
        #expect((last["usage"] as? [String: Any])?["total_tokens"] as? Int == 3, "\(last)")
        let without = HTTPFaceTests.events(try Self.post(http, #", "stream": true"# + search))
        #expect(!without.contains { $0.contains("usage") })
    }

    /// `X-Request-Id` is echoed, or made when the client sends none (or one that is not printable).
    @Test func requestIDsAreEchoedOrMade() throws {
        let (server, http) = try HTTPFaceTests.server()
        defer { withExtendedLifetime(server) {} }
        let echoed = try Self.post(http, headers: "X-Request-Id: job-42/7\r\n")
        #expect(echoed.headers.lowercased().contains("x-request-id: job-42/7"), "\(echoed.headers)")
        let made = try Self.post(http)
        #expect(made.headers.lowercased().contains("x-request-id: req_"), "\(made.headers)")
        let bad = try Self.post(http, headers: "X-Request-Id: \(String(repeating: "x", count: 200))\r\n")
        #expect(bad.headers.lowercased().contains("x-request-id: req_"), "\(bad.headers)")
    }

    /// 429 (the queue is full) and 503 (too many connections) say when to retry.
    @Test func busyAnswersCarryRetryAfter() throws {
        let (server, http) = try HTTPFaceTests.server { $0.queueDepth = 1; $0.maxConnections = 3 }
        defer { withExtendedLifetime(server) {} }
        let client = try server.connect()
        try client.caption(1, steps: 200)
        Thread.sleep(forTimeInterval: 0.05)
        let busy = try Self.post(http)
        #expect(busy.status == 429, "\(busy.body)")
        #expect(busy.headers.lowercased().contains("retry-after: 1"), "\(busy.headers)")
        let held = [try RawClient(path: http), try RawClient(path: http)]
        usleep(100_000)
        let full = try HTTPFaceTests.request(http, "GET", "/healthz")
        #expect(full.status == 503)
        #expect(full.headers.lowercased().contains("retry-after: 1"), "\(full.headers)")
        withExtendedLifetime(held) {}
    }

    /// `Expect: 100-continue` is answered before the body is sent (curl waits 1 s for it otherwise).
    @Test func expectContinueIsAnswered() throws {
        let (server, http) = try HTTPFaceTests.server()
        defer { withExtendedLifetime(server) {} }
        let body = HTTPFaceTests.chat()
        let client = try RawClient(path: http)
        try client.sendRaw(Array("POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: \(body.utf8.count)\r\n\r\n".utf8))
        let interim = try ServerEdgeTests.read(client, timeout: 2) { String(decoding: $0, as: UTF8.self).contains("\r\n\r\n") }
        #expect(interim.hasPrefix("HTTP/1.1 100 Continue"), "\(interim)")
        try client.sendRaw(Array(body.utf8))
        let rest = String(decoding: try client.readAll(timeout: 5), as: UTF8.self)
        #expect(rest.contains("HTTP/1.1 200 OK"), "\(rest)")
    }
}

/// The OpenAI mapping of the option table: every row that names an OpenAI field is accepted under
/// each of its names with an in-range value and reaches the engine; the rows without one are the
/// options docs/daemon.md lists as taking the daemon's defaults.
@Suite struct OpenAIMappingTests {
    @Test(arguments: DecodingOption.allCases.filter { $0.row.openAI != nil })
    func everyMappedRowIsAccepted(_ option: DecodingOption) throws {
        let (server, http) = try HTTPFaceTests.server()
        defer { withExtendedLifetime(server) {} }
        for name in option.row.openAI!.names {
            let value = switch option.row.openAI!.kind {
            case .integer(let minimum): "\(minimum)"
            case .number(_, let maximum): "\(maximum / 2)"
            case .seed: "7"
            }
            let reply = try OpenAIFaceTests.post(http, #", "\#(name)": \#(value)"#)
            #expect(reply.status == 200, "\(name): \(reply.body)")
        }
    }

    @Test func theUnmappedRowsAreDocumented() throws {
        let docs = try String(contentsOf: PackagePaths.root.appendingPathComponent("docs/daemon.md"), encoding: .utf8)
        let section = try #require(docs.range(of: "### `POST /v1/chat/completions`"))
        let text = docs[section.upperBound...]
        for option in DecodingOption.allCases {
            if let names = option.row.openAI?.names {
                for name in names { #expect(text.contains("`\(name)`"), "\(name) (\(option.rawValue)) is not in docs/daemon.md") }
            }
        }
        let unmapped = DecodingOption.allCases.filter { $0.row.openAI == nil && $0 != .doSample }
        #expect(unmapped.contains(.numBeams) && unmapped.contains(.badWords))
        #expect(text.contains("The decoding options without an OpenAI field"), "docs/daemon.md says what the unmapped options do")
    }
}
