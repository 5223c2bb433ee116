import BLIPProtocol

/// The server's read path: bytes in chunks of every size → FrameDecoder → Envelope. Invariants:
/// no crash; a decoded envelope re-encodes to bytes that decode to the same envelope.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFrame(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let first = bytes.first else { return 0 }
    let chunk = Int(first % 17) + 1  // the first byte picks the read size
    var decoder = FrameDecoder(maxFrameBytes: 1 << 16)
    var offset = 1
    while offset < bytes.count {
        let end = min(offset + chunk, bytes.count)
        decoder.append(bytes[offset..<end])
        offset = end
        do {
            while let frame = try decoder.nextFrame() {
                guard let envelope = try? Envelope(decoding: frame) else { continue }
                let again = try? Envelope(decoding: envelope.encoded())
                // The timeout is rounded to whole microseconds on the wire, as is the original.
                precondition(again == envelope, "envelope does not survive encode → decode: \(envelope)")
            }
        } catch {
            return 0  // frame too large: the stream is closed
        }
    }
    _ = try? decoder.finish()
    return 0
}
