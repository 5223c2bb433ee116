/// Writes frames: a 4-byte big-endian payload length, then the payload.
public struct FrameEncoder: Sendable {
    /// The largest payload this encoder writes, in bytes (at most `UInt32.max`).
    public let maxFrameBytes: Int

    /// - Parameter maxFrameBytes: The largest payload to write; clamped to `UInt32.max`, the
    ///   most a 4-byte prefix can say. Use the peer's limit to fail before sending.
    public init(maxFrameBytes: Int = Int(UInt32.max)) {
        self.maxFrameBytes = min(max(maxFrameBytes, 0), Int(UInt32.max))
    }

    /// The frame holding `payload`.
    /// - Throws: `FrameError.frameTooLarge` when `payload` exceeds ``maxFrameBytes``.
    public func encode(_ payload: [UInt8]) throws(FrameError) -> [UInt8] {
        var frame: [UInt8] = []
        try append(payload, to: &frame)
        return frame
    }

    /// Appends the frame holding `payload` to `buffer`, so several frames can share one write.
    /// - Throws: `FrameError.frameTooLarge` when `payload` exceeds ``maxFrameBytes``;
    ///   `buffer` is then unchanged.
    public func append(_ payload: [UInt8], to buffer: inout [UInt8]) throws(FrameError) {
        guard payload.count <= maxFrameBytes else {
            throw .frameTooLarge(length: UInt64(payload.count), limit: maxFrameBytes)
        }
        let length = UInt32(payload.count)
        buffer.reserveCapacity(buffer.count + FrameDecoder.prefixBytes + payload.count)
        buffer.append(UInt8(truncatingIfNeeded: length >> 24))
        buffer.append(UInt8(truncatingIfNeeded: length >> 16))
        buffer.append(UInt8(truncatingIfNeeded: length >> 8))
        buffer.append(UInt8(truncatingIfNeeded: length))
        buffer.append(contentsOf: payload)
    }
}
