import BlipProtoC

/// `/blip.v1.Captioner/Info`'s request. It has no fields; its bytes are empty.
public struct InfoRequest: Sendable, Hashable {
    public init() {}
}

extension InfoRequest: WireMessage {
    public static let messageName = "InfoRequest"

    public init(decoding bytes: [UInt8]) throws(MessageDecodingError) {
        // Still parsed, so that bytes which are not protobuf at all are refused; unknown fields
        // (from a newer client) are ignored as protobuf prescribes.
        try ProtobufC.decode(
            bytes, descriptor: blip__v1__info_request__descriptor,
            unpack: { blip__v1__info_request__unpack(nil, $0, $1) },
            free: { blip__v1__info_request__free_unpacked($0, nil) },
            read: { (_: borrowing Blip__V1__InfoRequest) throws(MessageDecodingError) in }
        )
        self.init()
    }

    public func encoded() -> [UInt8] {
        var c = Blip__V1__InfoRequest()
        blip__v1__info_request__init(&c)
        return ProtobufC.encode(
            c,
            packedSize: { blip__v1__info_request__get_packed_size($0) },
            pack: { blip__v1__info_request__pack($0, $1) }
        )
    }
}
