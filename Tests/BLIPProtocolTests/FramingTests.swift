import Testing
@testable import BLIPProtocol

/// Three frames of different sizes, one of them empty, back to back.
private let payloads: [[UInt8]] = [
    Array("first".utf8),
    [],
    (0..<300).map { UInt8(truncatingIfNeeded: $0 * 7) },
]

private func stream(_ payloads: [[UInt8]]) throws -> [UInt8] {
    var bytes: [UInt8] = []
    for payload in payloads { try FrameEncoder().append(payload, to: &bytes) }
    return bytes
}

@Test func encoderWritesBigEndianLengthPrefix() throws {
    let frame = try FrameEncoder().encode(Array(repeating: 0xAB, count: 0x0102))
    #expect(Array(frame.prefix(4)) == [0x00, 0x00, 0x01, 0x02])
    #expect(frame.count == 4 + 0x0102)
    #expect(try FrameEncoder().encode([]) == [0, 0, 0, 0])
}

@Test func encoderRefusesPayloadOverItsLimit() {
    var buffer: [UInt8] = [1, 2]
    #expect(throws: FrameError.frameTooLarge(length: 11, limit: 10)) {
        try FrameEncoder(maxFrameBytes: 10).append(Array(repeating: 0, count: 11), to: &buffer)
    }
    #expect(buffer == [1, 2])
}

@Test(arguments: 1...40)
func decoderYieldsFramesWhateverTheChunkSize(chunkSize: Int) throws {
    let bytes = try stream(payloads)
    var decoder = FrameDecoder(maxFrameBytes: 1024)
    var frames: [[UInt8]] = []
    var start = 0
    while start < bytes.count {
        let end = min(start + chunkSize, bytes.count)
        decoder.append(bytes[start..<end])
        while let frame = try decoder.nextFrame() { frames.append(frame) }
        start = end
    }
    #expect(frames == payloads)
    #expect(!decoder.hasPartialFrame)
    #expect(decoder.bufferedByteCount == 0)
    try decoder.finish()
}

@Test func decoderYieldsFramesForEveryChunkSizeUpToTheWholeStream() throws {
    let bytes = try stream(payloads)
    for chunkSize in 1...bytes.count {
        var decoder = FrameDecoder(maxFrameBytes: 1024)
        var frames: [[UInt8]] = []
        for start in stride(from: 0, to: bytes.count, by: chunkSize) {
            decoder.append(Array(bytes[start..<min(start + chunkSize, bytes.count)]))
            while let frame = try decoder.nextFrame() { frames.append(frame) }
        }
        #expect(frames == payloads, "chunk size \(chunkSize)")
    }
}

@Test func oversizedLengthIsRejectedBeforeAnyPayloadArrives() throws {
    var decoder = FrameDecoder(maxFrameBytes: 1000)
    decoder.append([0xFF, 0xFF, 0xFF, 0xF0])  // announces 4 GiB; no payload follows
    #expect(throws: FrameError.frameTooLarge(length: 0xFFFF_FFF0, limit: 1000)) {
        try decoder.nextFrame()
    }
    #expect(decoder.bufferedByteCount == 0)
    // The stream has lost its place: the decoder keeps failing, whatever comes next.
    decoder.append(try FrameEncoder().encode([1, 2, 3]))
    #expect(throws: FrameError.frameTooLarge(length: 0xFFFF_FFF0, limit: 1000)) {
        try decoder.nextFrame()
    }
}

@Test func lengthEqualToTheLimitIsAccepted() throws {
    var decoder = FrameDecoder(maxFrameBytes: 3)
    decoder.append(try FrameEncoder().encode([7, 8, 9]))
    #expect(try decoder.nextFrame() == [7, 8, 9])
    decoder.append([0, 0, 0, 4])
    #expect(throws: FrameError.frameTooLarge(length: 4, limit: 3)) { try decoder.nextFrame() }
}

@Test func framesBeforeAnOversizedOneAreStillDelivered() throws {
    var decoder = FrameDecoder(maxFrameBytes: 8)
    decoder.append(try FrameEncoder().encode([1]) + [0, 0, 1, 0])
    #expect(try decoder.nextFrame() == [1])
    #expect(throws: FrameError.frameTooLarge(length: 256, limit: 8)) { try decoder.nextFrame() }
}

@Test func zeroLengthFrameIsAnEmptyFrame() throws {
    var decoder = FrameDecoder(maxFrameBytes: 0)
    decoder.append([0, 0, 0, 0, 0, 0, 0, 0])
    #expect(try decoder.nextFrame() == [])
    #expect(try decoder.nextFrame() == [])
    #expect(try decoder.nextFrame() == nil)
    // One layer up, an empty envelope is refused: it has no kind.
    #expect(throws: MessageDecodingError.self) { try Envelope(decoding: []) }
}

@Test func truncatedInputYieldsNoFrameYet() throws {
    let frame = try FrameEncoder().encode([1, 2, 3, 4, 5])
    for cut in 0..<frame.count {
        var decoder = FrameDecoder(maxFrameBytes: 64)
        decoder.append(Array(frame.prefix(cut)))
        #expect(try decoder.nextFrame() == nil, "cut at \(cut)")
        #expect(decoder.hasPartialFrame == (cut > 0))
        if cut > 0 {
            // Until the prefix is complete, only the prefix is known to be expected.
            let expected: UInt64 = cut < 4 ? 4 : 9
            #expect(throws: FrameError.truncated(expected: expected, received: UInt64(cut))) { try decoder.finish() }
        }
        // The rest completes it.
        decoder.append(Array(frame.dropFirst(cut)))
        #expect(try decoder.nextFrame() == [1, 2, 3, 4, 5])
        try decoder.finish()
    }
}

@Test func frameErrorsMapToStatusCodes() {
    #expect(FrameError.frameTooLarge(length: 9, limit: 8).rpcErrorCode == .resourceExhausted)
    #expect(FrameError.truncated(expected: 9, received: 3).rpcErrorCode == .dataLoss)
}
