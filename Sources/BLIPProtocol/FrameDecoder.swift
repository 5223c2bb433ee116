/// Reads frames (a 4-byte big-endian length, then that many payload bytes) from a byte stream
/// that arrives in chunks of any size.
///
/// Feed chunks with ``append(_:)`` as they are read, then take frames with
/// ``nextFrame()`` until it returns `nil`:
/// ```swift
/// decoder.append(chunk)
/// while let frame = try decoder.nextFrame() { handle(frame) }
/// ```
/// Chunks are kept as given (arrays are shared, not copied) until a frame needs their bytes,
/// and a payload is copied out only after its length prefix has been checked against
/// ``maxFrameBytes``: a peer announcing 4 GiB costs nothing but the error.
///
/// A zero-length frame is a frame: ``nextFrame()`` returns `[]`. Framing knows nothing of
/// envelopes; an empty envelope is rejected one layer up (it has no kind).
///
/// Errors are final: the decoder rethrows the first one from then on, because the stream has
/// lost its place and the connection must be closed.
public struct FrameDecoder: Sendable {
    /// The length prefix's size in bytes.
    public static let prefixBytes = 4

    /// The largest payload accepted, in bytes.
    public let maxFrameBytes: Int

    /// Chunks read from the stream and not consumed yet.
    private var pending = ChunkQueue()
    /// Bytes of the current length prefix read so far.
    private var prefix: [UInt8] = []
    /// The payload being assembled, once its prefix passed the limit check.
    private var payload: [UInt8] = []
    private var payloadLength: Int?
    private var failure: FrameError?

    /// - Parameter maxFrameBytes: The largest payload to accept; a longer prefix fails with
    ///   `FrameError.frameTooLarge` before any of the payload is buffered.
    public init(maxFrameBytes: Int) {
        self.maxFrameBytes = max(maxFrameBytes, 0)
    }

    /// Queues bytes read from the stream. Never copies them; never fails.
    public mutating func append(_ bytes: [UInt8]) {
        append(bytes[...])
    }

    /// Queues bytes read from the stream. Never copies them; never fails.
    public mutating func append(_ bytes: ArraySlice<UInt8>) {
        pending.append(bytes)
    }

    /// The next complete frame's payload, or `nil` until more bytes arrive.
    /// - Throws: `FrameError.frameTooLarge` as soon as a length prefix exceeds
    ///   ``maxFrameBytes``, and the same error on every later call.
    public mutating func nextFrame() throws(FrameError) -> [UInt8]? {
        if let failure { throw failure }
        if payloadLength == nil {
            pending.move(into: &prefix, upTo: Self.prefixBytes)
            guard prefix.count == Self.prefixBytes else { return nil }
            let length = prefix.reduce(0) { $0 << 8 | Int($1) }
            prefix.removeAll(keepingCapacity: true)
            guard length <= maxFrameBytes else {
                let error = FrameError.frameTooLarge(length: UInt64(length), limit: maxFrameBytes)
                failure = error
                pending = ChunkQueue()
                throw error
            }
            payloadLength = length
            payload = []
            payload.reserveCapacity(length)
        }
        guard let length = payloadLength else { return nil }
        pending.move(into: &payload, upTo: length)
        guard payload.count == length else { return nil }
        payloadLength = nil
        defer { payload = [] }
        return payload
    }

    /// Whether bytes of an unfinished frame are held: at end of stream this means the peer
    /// stopped mid-frame.
    /// The length of the frame being received, once its prefix is in; `nil` between frames.
    public var announcedLength: Int? { payloadLength }

    public var hasPartialFrame: Bool {
        failure == nil && (payloadLength != nil || !prefix.isEmpty || pending.count > 0)
    }

    /// Bytes queued or assembled but not yet returned as frames.
    public var bufferedByteCount: Int {
        pending.count + prefix.count + payload.count
    }

    /// Call at end of stream, after taking every frame.
    /// - Throws: `FrameError.truncated` when the stream ended inside a frame (or the error
    ///   the decoder already failed with).
    public func finish() throws(FrameError) {
        if let failure { throw failure }
        guard hasPartialFrame else { return }
        // Unconsumed chunks may hold a whole prefix; count them as received bytes of this frame.
        let prefixDone = payloadLength == nil ? 0 : Self.prefixBytes
        let received = UInt64(prefixDone + bufferedByteCount)
        let expected = UInt64(Self.prefixBytes + (payloadLength ?? 0))
        throw .truncated(expected: max(expected, received), received: received)
    }
}

/// Byte chunks in arrival order, consumed from the front without copying them first.
private struct ChunkQueue: Sendable {
    private var chunks: [ArraySlice<UInt8>] = []
    /// Consumption is at `chunks[index]`, `offset` bytes in.
    private var index = 0
    private var offset = 0
    /// Bytes not consumed yet.
    private(set) var count = 0

    mutating func append(_ bytes: ArraySlice<UInt8>) {
        guard !bytes.isEmpty else { return }
        chunks.append(bytes)
        count += bytes.count
    }

    /// Moves bytes into `buffer` until it holds `target` bytes or the queue is empty.
    mutating func move(into buffer: inout [UInt8], upTo target: Int) {
        while buffer.count < target, index < chunks.count {
            let chunk = chunks[index]
            let start = chunk.startIndex + offset
            let take = min(target - buffer.count, chunk.endIndex - start)
            buffer.append(contentsOf: chunk[start..<(start + take)])
            offset += take
            count -= take
            if start + take == chunk.endIndex {
                index += 1
                offset = 0
            }
        }
        if index == chunks.count {
            // Everything is consumed: release the chunks, keep the array's storage.
            chunks.removeAll(keepingCapacity: true)
            index = 0
        }
    }
}
