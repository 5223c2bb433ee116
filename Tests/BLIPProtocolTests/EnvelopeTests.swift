import Testing
@testable import BLIPProtocol

private func hex(_ text: String) -> [UInt8] {
    let digits = text.filter(\.isHexDigit)
    return stride(from: 0, to: digits.count, by: 2).map { offset in
        let start = digits.index(digits.startIndex, offsetBy: offset)
        return UInt8(digits[start...digits.index(after: start)], radix: 16)!
    }
}

/// The frame docs/protocol.md walks through. If this test fails, the wire format changed:
/// that breaks every client, so change the docs and the version, not the test.
private let goldenFrame = hex("""
    00 00 00 34
    08 01
    10 01
    1a 15 2f 62 6c 69 70 2e 76 31 2e 48 65 61 6c 74 68 2f 43 68 65 63 6b
    20 90 a1 0f
    2a 13 0a 11 62 6c 69 70 2e 76 31 2e 43 61 70 74 69 6f 6e 65 72
    """)

@Test func goldenRequestFrame() throws {
    let envelope = Envelope.request(
        callID: 1, method: .healthCheck, message: HealthCheckRequest(service: "blip.v1.Captioner"),
        timeout: .milliseconds(250)
    )
    #expect(try FrameEncoder().encode(envelope.encoded()) == goldenFrame)

    var decoder = FrameDecoder(maxFrameBytes: 1024)
    decoder.append(goldenFrame)
    let frame = try #require(try decoder.nextFrame())
    let decoded = try Envelope(decoding: frame)
    #expect(decoded == envelope)
    #expect(decoded.timeoutMicroseconds == 250_000)
    #expect(try HealthCheckRequest(decoding: decoded.payload).service == "blip.v1.Captioner")
}

/// The reply docs/protocol.md shows for the golden request.
@Test func goldenResponseFrame() throws {
    let request = try Envelope(decoding: Array(goldenFrame.dropFirst(4)))
    let response = Envelope.response(to: request, message: HealthCheckResponse(status: .serving))
    let expected = hex("""
        00 00 00 21
        08 01
        10 02
        1a 15 2f 62 6c 69 70 2e 76 31 2e 48 65 61 6c 74 68 2f 43 68 65 63 6b
        2a 02 08 01
        32 00
        """)
    #expect(try FrameEncoder().encode(response.encoded()) == expected)
    let decoded = try Envelope(decoding: Array(expected.dropFirst(4)))
    #expect(decoded.responseStatus == .ok)
    #expect(try HealthCheckResponse(decoding: decoded.payload).status == .serving)
}

@Test func goldenFailureEnvelope() throws {
    let envelope = Envelope.failure(
        callID: 300, method: RPCMethod.caption.rawValue,
        error: RPCError(code: .invalidArgument, message: "bad")
    )
    // call_id 300 = ac 02; kind 2; method; status { code 3, message "bad" }.
    let expected = hex("08 ac 02 10 02 1a 1a") + Array(RPCMethod.caption.rawValue.utf8) + hex("32 07 08 03 12 03 62 61 64")
    #expect(envelope.encoded() == expected)
    #expect(try Envelope(decoding: expected) == envelope)
}

@Test func envelopeRoundTripsWithEveryFieldSet() throws {
    let envelope = Envelope(
        callID: .max, kind: .response, method: RPCMethod.info.rawValue, timeout: .seconds(3),
        payload: [0, 1, 2, 255], status: RPCStatus(code: .unauthenticated, message: "who are you? ✓")
    )
    #expect(try Envelope(decoding: envelope.encoded()) == envelope)
}

@Test func envelopeRoundTripsWithOnlyRequiredFields() throws {
    let cancel = Envelope.cancel(callID: 9)
    #expect(cancel.encoded() == [0x08, 0x09, 0x10, 0x03])
    let decoded = try Envelope(decoding: cancel.encoded())
    #expect(decoded == cancel)
    #expect(decoded.timeout == nil && decoded.status == nil && decoded.payload.isEmpty && decoded.method.isEmpty)
    // A response without a status is an OK one.
    let bare = try Envelope(decoding: [0x08, 0x05, 0x10, 0x02])
    #expect(bare.status == nil && bare.responseStatus == .ok)
}

@Test func timeoutIsSentInWholeMicrosecondsRoundedUp() {
    func micros(_ timeout: Duration?) -> UInt64 {
        Envelope(callID: 1, kind: .request, timeout: timeout).timeoutMicroseconds
    }
    #expect(micros(nil) == 0)
    #expect(micros(.microseconds(1)) == 1)
    #expect(micros(.nanoseconds(1)) == 1)
    #expect(micros(.nanoseconds(1_001)) == 2)
    #expect(micros(.seconds(2)) == 2_000_000)
    #expect(micros(.zero) == 1)
    #expect(micros(.seconds(-5)) == 1)
    #expect(micros(.seconds(Int64.max)) == .max)
}

@Test(arguments: [
    [0x0F],                                  // wire type 7 does not exist
    [0x08],                                  // varint cut short
    [0x2A, 0x05, 0x01],                      // bytes field longer than the input
    [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10],    // a JPEG, sent without an envelope
] as [[UInt8]])
func garbageIsAMalformedEnvelope(bytes: [UInt8]) {
    #expect(throws: MessageDecodingError.malformed(message: "Envelope", byteCount: bytes.count)) {
        try Envelope(decoding: bytes)
    }
}

@Test func anotherMessageIsNotAnEnvelope() {
    // CaptionRequest's field 1 is a message, Envelope's is a varint: protobuf-c refuses it.
    let request = CaptionRequest(image: .init(data: [1, 2, 3])).encoded()
    #expect(throws: MessageDecodingError.malformed(message: "Envelope", byteCount: request.count)) {
        try Envelope(decoding: request)
    }
    // InfoRequest encodes to no bytes at all, which parse, but carry no kind.
    #expect(throws: MessageDecodingError.self) { try Envelope(decoding: InfoRequest().encoded()) }
}

@Test func envelopeRulesAreChecked() {
    func field(_ envelope: Envelope) -> String? {
        do {
            _ = try Envelope(decoding: envelope.encoded())
            return nil
        } catch {
            guard case let .invalidField(_, field, _) = error else { return "malformed" }
            return field
        }
    }
    #expect(field(Envelope(callID: 0, kind: .request, method: RPCMethod.info.rawValue)) == "call_id")
    #expect(field(Envelope(callID: 0, kind: .cancel)) == "call_id")
    #expect(field(Envelope(callID: 0, kind: .response, status: .ok)) == nil)  // about the connection
    #expect(field(Envelope(callID: 4, kind: .request, method: "")) == "method")
    // Kind 0 and kind 9 are not kinds.
    #expect(throws: MessageDecodingError.self) { try Envelope(decoding: [0x08, 0x01]) }
    #expect(throws: MessageDecodingError.self) { try Envelope(decoding: [0x08, 0x01, 0x10, 0x09]) }
}

@Test func unknownStatusCodeReadsAsUnknown() throws {
    // status { code 42, message "x" }
    let bytes: [UInt8] = [0x08, 0x01, 0x10, 0x02, 0x32, 0x05, 0x08, 0x2A, 0x12, 0x01, 0x78]
    let envelope = try Envelope(decoding: bytes)
    #expect(envelope.status == RPCStatus(code: .unknown, message: "status code 42: x"))
}

@Test func invalidUTF8IsRefused() {
    // method = ff fe
    let bytes: [UInt8] = [0x08, 0x01, 0x10, 0x01, 0x1A, 0x02, 0xFF, 0xFE]
    #expect(throws: MessageDecodingError.invalidField(message: "Envelope", field: "method", reason: "is not valid UTF-8")) {
        try Envelope(decoding: bytes)
    }
}
