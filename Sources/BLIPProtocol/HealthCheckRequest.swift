import BlipProtoC

/// `/blip.v1.Health/Check`'s request, as in grpc.health.v1.
public struct HealthCheckRequest: Sendable, Hashable {
    /// `""` asks about the server as a whole; otherwise a service such as `"blip.v1.Captioner"`.
    public var service: String

    public init(service: String = "") {
        self.service = service
    }
}

extension HealthCheckRequest: WireMessage {
    public static let messageName = "HealthCheckRequest"

    public init(decoding bytes: [UInt8]) throws(MessageDecodingError) {
        self = try ProtobufC.decode(
            bytes, descriptor: blip__v1__health_check_request__descriptor,
            unpack: { blip__v1__health_check_request__unpack(nil, $0, $1) },
            free: { blip__v1__health_check_request__free_unpacked($0, nil) },
            read: { (c: borrowing Blip__V1__HealthCheckRequest) throws(MessageDecodingError) in
                HealthCheckRequest(service: try ProtobufC.string(c.service, message: Self.messageName, field: "service"))
            }
        )
    }

    public func encoded() -> [UInt8] {
        CArena.with { arena in
            var c = Blip__V1__HealthCheckRequest()
            blip__v1__health_check_request__init(&c)
            c.service = arena.cString(service)
            return ProtobufC.encode(
                c,
                packedSize: { blip__v1__health_check_request__get_packed_size($0) },
                pack: { blip__v1__health_check_request__pack($0, $1) }
            )
        }
    }
}
