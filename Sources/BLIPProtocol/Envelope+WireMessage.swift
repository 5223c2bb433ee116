import BlipProtoC

extension Envelope: WireMessage {
    public static let messageName = "Envelope"

    /// Decodes an envelope and checks what every receiver relies on: a known kind, a call id
    /// on requests and cancels, a method on requests.
    public init(decoding bytes: [UInt8]) throws(MessageDecodingError) {
        self = try ProtobufC.decode(
            bytes, descriptor: blip__v1__envelope__descriptor,
            unpack: { blip__v1__envelope__unpack(nil, $0, $1) },
            free: { blip__v1__envelope__free_unpacked($0, nil) },
            read: { (c: borrowing Blip__V1__Envelope) throws(MessageDecodingError) in try Envelope(c) }
        )
    }

    public func encoded() -> [UInt8] {
        CArena.with { arena in
            var c = Blip__V1__Envelope()
            blip__v1__envelope__init(&c)
            c.call_id = callID
            c.kind = Blip__V1__FrameKind(rawValue: kind.rawValue)
            c.method = arena.cString(method)
            c.timeout_us = timeoutMicroseconds
            c.payload = arena.binary(payload)
            if let status {
                var cStatus = Blip__V1__Status()
                blip__v1__status__init(&cStatus)
                cStatus.code = Blip__V1__StatusCode(rawValue: status.code.rawValue)
                cStatus.message = arena.cString(status.message)
                c.status = arena.store(cStatus)
            }
            return ProtobufC.encode(
                c,
                packedSize: { blip__v1__envelope__get_packed_size($0) },
                pack: { blip__v1__envelope__pack($0, $1) }
            )
        }
    }

    private init(_ c: borrowing Blip__V1__Envelope) throws(MessageDecodingError) {
        let name = Self.messageName
        guard let kind = Kind(rawValue: c.kind.rawValue) else {
            throw .invalidField(message: name, field: "kind",
                                reason: "is \(c.kind.rawValue); expected REQUEST (1), RESPONSE (2) or CANCEL (3)")
        }
        let method = try ProtobufC.string(c.method, message: name, field: "method")
        if kind != .response, c.call_id == 0 {
            throw .invalidField(message: name, field: "call_id",
                                reason: "is 0; choose a non-zero id unique among the calls in flight")
        }
        if kind == .request, method.isEmpty {
            throw .invalidField(message: name, field: "method",
                                reason: "is empty; requests name a method such as \(RPCMethod.caption.rawValue)")
        }
        var status: RPCStatus?
        if let cStatus = c.status {
            let message = try ProtobufC.string(cStatus.pointee.message, message: "Status", field: "message")
            let raw = cStatus.pointee.code.rawValue
            if let code = StatusCode(rawValue: raw) {
                status = RPCStatus(code: code, message: message)
            } else {
                // gRPC's rule for codes a client does not know: report them as UNKNOWN.
                status = RPCStatus(code: .unknown, message: "status code \(raw): \(message)")
            }
        }
        self.init(
            callID: c.call_id, kind: kind, method: method,
            timeout: c.timeout_us == 0 ? nil : .microseconds(c.timeout_us),
            payload: ProtobufC.bytes(c.payload), status: status
        )
    }
}
