import Testing
@testable import BLIPProtocol

/// What is refused from a walk over a message's tags before protobuf-c parses it: floods of unknown
/// or repeated fields (issue 20; before: ~40× the frame's size in memory), in every sub-message the
/// descriptor names, and strings holding a NUL byte (before: cut at the NUL, docs/protocol.md §2).
@Suite struct WirePrecheckTests {
    /// `count` unknown varint fields (field 99, value 1: three bytes each).
    static func unknownFields(_ count: Int) -> [UInt8] {
        Array(repeating: [0x98, 0x06, 0x01], count: count).flatMap { $0 }
    }

    static func varint(_ value: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        var value = value
        repeat {
            bytes.append(UInt8(value & 0x7f) | (value > 0x7f ? 0x80 : 0))
            value >>= 7
        } while value > 0
        return bytes
    }

    /// A length-delimited field `number` holding `payload`.
    static func field(_ number: Int, _ payload: [UInt8]) -> [UInt8] {
        varint(number << 3 | 2) + varint(payload.count) + payload
    }

    @Test func aFloodOfUnknownFieldsIsRefusedByCount() throws {
        let request = CaptionRequest(image: .init(data: [1, 2, 3])).encoded()
        #expect(try CaptionRequest(decoding: request + Self.unknownFields(10)).image.data == [1, 2, 3])
        #expect(throws: MessageDecodingError.invalidField(message: "CaptionRequest", field: "(fields)",
                                                          reason: "holds more than 1024 fields; no message of blip.v1 needs that many (repeated or unknown fields)")) {
            try CaptionRequest(decoding: request + Self.unknownFields(1_000_000))
        }
    }

    @Test func aFloodInsideASubMessageIsRefused() throws {
        let badWords = Array(repeating: Self.field(16, [0x61]), count: 2000).flatMap { $0 }  // 2000 × bad_words "a"
        let request = CaptionRequest(image: .init(data: [1])).encoded() + Self.field(3, badWords)
        #expect {
            try CaptionRequest(decoding: request)
        } throws: { error in
            (error as? MessageDecodingError).map { "\($0)".contains("DecodingOptions") } ?? false
        }
        let envelope = Envelope(callID: 1, kind: .request, method: "/x", payload: []).encoded()
        #expect(throws: MessageDecodingError.self) { try Envelope(decoding: envelope + Self.field(6, Self.unknownFields(5000))) }
    }

    /// An image is one field however large it is.
    @Test func aLargeBytesFieldIsOneField() throws {
        let image = [UInt8](repeating: 7, count: 1 << 20)
        #expect(try CaptionRequest(decoding: CaptionRequest(image: .init(data: image)).encoded()).image.data == image)
    }

    /// A response's sub-messages are walked too (found from the descriptor, not a list kept by hand).
    @Test func aFloodInsideAResponsesCandidateIsRefused() throws {
        let candidate = Self.field(1, Self.field(1, Array("a cat".utf8)))  // candidates[0].text
        #expect(try CaptionResponse(decoding: candidate).candidates.first?.text == "a cat")
        let flooded = Self.field(1, Self.field(1, Array("a cat".utf8)) + Self.unknownFields(2000))
        #expect {
            try CaptionResponse(decoding: flooded)
        } throws: { error in
            (error as? MessageDecodingError).map { "\($0)".contains("Candidate") } ?? false
        }
    }

    static let nulReason = "contains a NUL byte; strings of blip.v1 are text without NUL (docs/protocol.md §2)"

    /// protobuf-c hands strings over cut at their first NUL: such strings are refused, at any depth,
    /// and bytes fields may hold any byte.
    @Test func aStringHoldingNULIsRefused() throws {
        let request = CaptionRequest(image: .init(data: [0, 1, 0])).encoded()
        #expect(try CaptionRequest(decoding: request + Self.field(2, Array("a b".utf8))).prompt == "a b")
        #expect(try CaptionRequest(decoding: request).image.data == [0, 1, 0])
        #expect(throws: MessageDecodingError.invalidField(message: "CaptionRequest", field: "prompt", reason: Self.nulReason)) {
            try CaptionRequest(decoding: request + Self.field(2, [0x61, 0x00, 0x62]))
        }
        #expect(throws: MessageDecodingError.invalidField(message: "CaptionRequest", field: "prompts", reason: Self.nulReason)) {
            try CaptionRequest(decoding: request + Self.field(4, [0x61]) + Self.field(4, [0x00]))
        }
        #expect(throws: MessageDecodingError.invalidField(message: "DecodingOptions", field: "bad_words", reason: Self.nulReason)) {
            try CaptionRequest(decoding: request + Self.field(3, Self.field(16, [0x61, 0x00])))
        }
        let envelope = Envelope(callID: 1, kind: .request, method: "", payload: [0, 0]).encoded()
        #expect(throws: MessageDecodingError.invalidField(message: "Envelope", field: "method", reason: Self.nulReason)) {
            try Envelope(decoding: envelope + Self.field(3, [0x61, 0x00, 0x62]))
        }
        #expect(try Envelope(decoding: envelope + Self.field(3, [0x61])).payload == [0, 0])
    }
}
