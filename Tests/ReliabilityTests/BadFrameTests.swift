import BLIPProtocol
import BLIPTestSupport
import Foundation
import Glibc
import Testing

extension ReliabilitySuite {
    /// Framing and envelope abuse (docs/protocol.md §1, §2.4): each gets its status and, where the
    /// stream has lost its place, a call-id-0 response and a closed connection.
    @Test func badFramesAndEnvelopes() throws {
        let h = try Harness()
        let health = HealthCheckRequest().encoded()

        // Zero length: a well-formed frame holding an empty envelope, which has no kind.
        do {
            let c = try h.connect()
            try c.sendRaw(RawClient.prefix(0))
            h.check("zero-length frame", try c.receive(), code: .invalidArgument, callID: 0, messageContains: "kind")
            #expect(c.closedByPeer(within: 2), "connection should close after a call-id-0 response")
        }
        // Length prefixes over the 32 MiB limit: refused from the prefix alone, nothing allocated.
        for length in [UInt32((32 << 20) + (256 << 10)) + 1, UInt32.max] {  // the default --max-frame-bytes + 1
            let rss = h.daemon.rssKiB
            let c = try h.connect()
            try c.sendRaw(RawClient.prefix(length) + [1, 2, 3])
            h.check("length prefix \(length)", try c.receive(), code: .resourceExhausted, callID: 0,
                    messageContains: "\(length)")
            #expect(c.closedByPeer(within: 2))
            let grown = h.daemon.rssKiB - rss
            h.note("  RSS growth after prefix \(length)", "\(grown) KiB")
            #expect(grown < 4096, "a \(length)-byte prefix grew RSS by \(grown) KiB")
        }
        // An oversized frame actually sent (33 MiB): the reply comes after the prefix; the rest is not read.
        do {
            let c = try h.connect()
            let payload = [UInt8](repeating: 0x41, count: 33 << 20)
            try? c.sendRaw(RawClient.prefix(UInt32(payload.count)) + payload)
            h.check("33 MiB frame sent whole", try c.receive(), code: .resourceExhausted, callID: 0)
        }
        // Truncated frame: the prefix promises 100 bytes, 50 arrive, then the client half-closes.
        do {
            let c = try h.connect()
            try c.sendRaw(RawClient.prefix(100) + [UInt8](repeating: 0x08, count: 50))
            shutdown(c.fd, Int32(SHUT_WR))
            let response = try c.receive(timeout: 3)
            h.note("truncated frame (100 promised, 50 sent, EOF)", response.map { "\($0.statusCode.name): \($0.statusMessage)" } ?? "closed, no response")
            #expect(response == nil, "a truncated frame is discarded silently (protocol §1)")
            h.bystanderIsServed(after: "truncated frame")
        }
        // A prefix shorter than the envelope that follows: the first 3 bytes do not parse.
        do {
            let c = try h.connect()
            let envelope = Envelope(callID: 7, kind: .request, method: RPCMethod.healthCheck.rawValue, payload: health).encoded()
            try c.sendRaw(RawClient.prefix(3) + envelope)
            h.check("prefix 3 before a \(envelope.count)-byte envelope", try c.receive(), code: .invalidArgument, callID: 0)
        }
        // Bytes that are not an envelope, and envelopes the protocol forbids (§2.4).
        let forbidden: [(String, [UInt8], String)] = [
            ("garbage envelope (0xFF × 16)", [UInt8](repeating: 0xFF, count: 16), "Envelope"),
            ("random bytes", (0..<64).map { UInt8(truncatingIfNeeded: $0 &* 97 &+ 13) }, ""),
            ("kind 9 (unknown)", [0x08, 0x01, 0x10, 0x09], "kind"),
            ("kind 0 (unspecified)", [0x08, 0x01, 0x1a, 0x01, 0x2f], "kind"),
            ("request with call id 0", Envelope(callID: 0, kind: .request, method: RPCMethod.healthCheck.rawValue).encoded(), "call_id"),
            ("request with empty method", Envelope(callID: 5, kind: .request, method: "").encoded(), "method"),
            ("cancel with call id 0", Envelope(callID: 0, kind: .cancel).encoded(), "call_id"),
            ("response sent by a client", Envelope(callID: 5, kind: .response, method: RPCMethod.healthCheck.rawValue).encoded(), ""),
            ("method not UTF-8", [0x08, 0x05, 0x10, 0x01, 0x1a, 0x02, 0xC3, 0x28], "UTF-8"),
            ("wrong wire type for call_id (bytes)", [0x0a, 0x02, 0x01, 0x02, 0x10, 0x01], ""),
            ("length-delimited field past the end", [0x08, 0x05, 0x10, 0x01, 0x2a, 0x7f, 0x00], ""),
            ("varint of 11 bytes", [0x08] + [UInt8](repeating: 0xFF, count: 10) + [0x01], ""),
        ]
        for (name, bytes, mention) in forbidden {
            let c = try h.connect()
            try c.sendRaw(RawClient.frame(bytes))
            h.check(name, try c.receive(), code: .invalidArgument, callID: 0, messageContains: mention)
            #expect(c.closedByPeer(within: 2), "\(name): connection should close")
        }
        // protocol.md §2: strings must not contain NUL. protobuf-c would hand the server "a\0b" as
        // "a" (an unknown method); the envelope is refused instead, as any other malformed one.
        do {
            let c = try h.connect()
            try c.sendRaw(RawClient.frame([0x08, 0x05, 0x10, 0x01, 0x1a, 0x03, 0x61, 0x00, 0x62]))
            h.check("method \"a\\0b\" (NUL inside)", try c.receive(), code: .invalidArgument, callID: 0, messageContains: "Envelope.method contains a NUL byte")
        }
        // With the default limits an image of exactly max_image_bytes (32 MiB) cannot be sent: its
        // frame (envelope + request overhead) exceeds max_frame_bytes (also 32 MiB), although
        // protocol.md §1 says the frame limit allows a little more than the largest image.
        do {
            let c = try h.connect()
            let request = CaptionRequest(image: .init(data: [UInt8](repeating: 0xFF, count: 32 << 20)))
            try? c.send(.request(callID: 3, method: .caption, message: request))
            let response = try #require(try c.receive())
            h.check("image of exactly max_image_bytes (32 MiB)", response, code: response.statusCode)
            // Fixed (F3): the frame limit leaves room for the envelope, so the call itself is answered
            // (0xFF bytes are no image format: INVALID_ARGUMENT for call 3, not a connection error).
            #expect(response.callID == 3 && response.statusCode == .invalidArgument, "\(response.statusMessage)")
        }
        // Per-call errors keep the connection open: the same client is served afterwards.
        do {
            let c = try h.connect()
            h.check("unknown method", try c.call("/blip.v1.Captioner/Nope", payload: [], callID: 11),
                    code: .unimplemented, callID: 11, messageContains: "/blip.v1.Captioner/Nope")
            h.check("garbage Caption payload", try c.call(RPCMethod.caption.rawValue, payload: [0xFF, 0xFF, 0xFF], callID: 12),
                    code: .invalidArgument, callID: 12, messageContains: "CaptionRequest")
            h.check("HealthCheckRequest bytes sent to Caption",
                    try c.call(RPCMethod.caption.rawValue, payload: HealthCheckRequest(service: "blip.v1.Captioner").encoded(), callID: 13),
                    code: .invalidArgument, callID: 13)
            let captionBytes = CaptionRequest(image: .init(data: try Paths.image("pixel_1x1.png"))).encoded()
            let wrong = try c.call(RPCMethod.healthCheck.rawValue, payload: captionBytes, callID: 14)
            h.check("CaptionRequest bytes sent to Health/Check", wrong, code: .invalidArgument, callID: 14)
            h.check("Info with garbage payload", try c.call(RPCMethod.info.rawValue, payload: [0x0a, 0xFF], callID: 15),
                    code: .invalidArgument, callID: 15)
            // A cancel for an unknown id is ignored: no response; the next call is answered.
            try c.send(.cancel(callID: 999))
            h.check("cancel of an unknown id, then health", try c.call(RPCMethod.healthCheck.rawValue, payload: health, callID: 16),
                    code: .ok, callID: 16)
        }
        // Duplicate call id in flight: the second gets ALREADY_EXISTS, the first its own result.
        do {
            let c = try h.connect()
            let slow = CaptionRequest(image: .init(data: try Paths.image("rocket.png")),
                                      options: DecodingOptions(numBeams: 8, maxNewTokens: 60, minNewTokens: 60))
            let frame = RawClient.frame(Envelope.request(callID: 21, method: .caption, message: slow).encoded())
            try c.sendRaw(frame + frame)
            let first = try #require(try c.receive())
            let second = try #require(try c.receive())
            let codes = Set([first.statusCode, second.statusCode])
            h.note("duplicate call id 21", "\(first.statusCode.name) then \(second.statusCode.name): \(first.statusCode == .ok ? second.statusMessage : first.statusMessage)")
            #expect(codes == [.ok, .alreadyExists])
            #expect(first.callID == 21 && second.callID == 21)
            h.bystanderIsServed(after: "duplicate call id")
        }
        h.finish("bad frames and envelopes")
    }
}
