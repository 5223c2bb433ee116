import Testing
@testable import BLIPProtocol

/// Issue 20: floods of unknown or repeated fields are refused from a walk over the tags, before
/// protobuf-c allocates a record for each (before: ~40× the frame's size in memory).
@Suite struct WireFieldCountTests {
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
}
