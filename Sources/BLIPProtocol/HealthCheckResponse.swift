import BlipProtoC

/// `/blip.v1.Health/Check`'s response, as in grpc.health.v1.
public struct HealthCheckResponse: Sendable, Hashable {
    /// grpc.health.v1's serving states, same names and numbers.
    public enum ServingStatus: UInt32, Sendable, Hashable, CaseIterable {
        case unknown = 0
        /// Ready: requests will be served.
        case serving = 1
        /// Up but not taking requests (loading, or shutting down).
        case notServing = 2
        /// The requested service does not exist on this server.
        case serviceUnknown = 3
    }

    public var status: ServingStatus

    public init(status: ServingStatus = .unknown) {
        self.status = status
    }
}

extension HealthCheckResponse: WireMessage {
    public static let messageName = "HealthCheckResponse"

    public init(decoding bytes: [UInt8]) throws(MessageDecodingError) {
        self = try ProtobufC.decode(
            bytes, descriptor: blip__v1__health_check_response__descriptor,
            unpack: { blip__v1__health_check_response__unpack(nil, $0, $1) },
            free: { blip__v1__health_check_response__free_unpacked($0, nil) },
            read: { (c: borrowing Blip__V1__HealthCheckResponse) throws(MessageDecodingError) in
                let raw = c.status.rawValue
                guard let status = ServingStatus(rawValue: raw) else {
                    throw .invalidField(message: Self.messageName, field: "status",
                                        reason: "is \(raw); expected UNKNOWN (0), SERVING (1), NOT_SERVING (2) or SERVICE_UNKNOWN (3)")
                }
                return HealthCheckResponse(status: status)
            }
        )
    }

    public func encoded() -> [UInt8] {
        var c = Blip__V1__HealthCheckResponse()
        blip__v1__health_check_response__init(&c)
        c.status = Blip__V1__HealthCheckResponse__ServingStatus(rawValue: status.rawValue)
        return ProtobufC.encode(
            c,
            packedSize: { blip__v1__health_check_response__get_packed_size($0) },
            pack: { blip__v1__health_check_response__pack($0, $1) }
        )
    }
}
