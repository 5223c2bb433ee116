import BLIPProtocol
import NIOCore

/// What the RPC handler receives from the framing.
enum RPCInbound: Sendable {
    /// One whole frame's payload.
    case frame([UInt8])
    /// The stream cannot go on (a frame over the limit, the byte budget full): answered with a
    /// call-id-0 response, then the connection closes; `reason` is the close's log line.
    case broken(RPCError, reason: String)
}

/// The RPC framing (docs/protocol.md §1), between the connection's gate and its RPC handler:
/// length-prefixed frames cut out of the bytes as they arrive, the half-received ones held
/// within the server's byte budget (`--max-buffered-bytes`, shared with HTTP bodies). It tells
/// the gate whether a frame is partly received (the unfinished-request timer), and closes a
/// connection whose peer shuts its side mid-frame.
final class RPCFrameHandler: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: every field is touched only on the connection's event loop.
    typealias InboundIn = ByteBuffer
    typealias InboundOut = RPCInbound

    private let gate: ConnectionGate
    private let server: ServerContext
    private var decoder: FrameDecoder
    /// Bytes of half-received frames, reserved from the server's budget.
    private var heldBytes = 0
    /// The stream broke: nothing more is read as frames.
    private var broken = false

    /// The largest frame read from a peer the allow-lists refuse (to answer its call id).
    static let refusedPeerFrameBytes = 64 << 10

    init(gate: ConnectionGate, server: ServerContext) {
        self.gate = gate
        self.server = server
        decoder = FrameDecoder(maxFrameBytes: server.configuration.maxFrameBytes)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !broken, !gate.isClosing else { return }
        var buffer = unwrapInboundIn(data)
        let bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
        let budget = server.budget
        guard budget.reserve(bytes.count) else {
            broken = true
            server.log("conn \(gate.id): the incoming-frame budget (\(budget.limit) bytes, --max-buffered-bytes) is full, refusing")
            context.fireChannelRead(wrapInboundOut(.broken(
                RPCError(code: .resourceExhausted, message: "the daemon is holding its limit of \(budget.limit) bytes of partly received frames (--max-buffered-bytes); retry later or send smaller requests"),
                reason: "incoming-frame budget full")))
            return
        }
        heldBytes += bytes.count
        decoder.append(bytes)
        do {
            while !gate.isClosing, let frame = try decoder.nextFrame() {
                context.fireChannelRead(wrapInboundOut(.frame(frame)))
            }
        } catch {
            broken = true
            let rpcError = RPCError(mapping: error)
            context.fireChannelRead(wrapInboundOut(.broken(rpcError, reason: "\(rpcError)".bounded(512))))
        }
        // A peer the allow-lists refuse gets its first request answered PERMISSION_DENIED (with
        // its call id); a frame too large to be a small request is not buffered to find that id.
        if !broken, !gate.permitted, let length = decoder.announcedLength, length > Self.refusedPeerFrameBytes {
            broken = true
            context.fireChannelRead(wrapInboundOut(.broken(
                RPCError(code: .permissionDenied, message: "this peer's uid/gid is not allowed to call blip-captiond; ask its administrator to add it to --allow-uid/--allow-gid"),
                reason: "peer not in --allow-uid/--allow-gid")))
        }
        let held = decoder.bufferedByteCount
        budget.release(heldBytes - held)
        heldBytes = held
        gate.report(receiving: !broken && decoder.hasPartialFrame)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed, decoder.hasPartialFrame {
            gate.close("peer closed the connection mid-frame")
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        server.budget.release(heldBytes)
        heldBytes = 0
        context.fireChannelInactive()
    }
}
