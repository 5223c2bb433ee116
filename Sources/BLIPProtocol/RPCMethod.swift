/// The methods a blip-captiond server answers, by their full wire names.
///
/// A request envelope's `method` is one of these raw values; the method decides the type of
/// the payload (protobuf bytes do not say which message they hold).
public enum RPCMethod: String, Sendable, Hashable, CaseIterable {
    /// `CaptionRequest` → `CaptionResponse`.
    case caption = "/blip.v1.Captioner/Caption"
    /// `InfoRequest` → `InfoResponse`.
    case info = "/blip.v1.Captioner/Info"
    /// `HealthCheckRequest` → `HealthCheckResponse`.
    case healthCheck = "/blip.v1.Health/Check"

    /// The service name a health check may ask about, `"blip.v1.Captioner"` or `"blip.v1.Health"`.
    public var service: String {
        let path = rawValue.dropFirst()
        return String(path.prefix(while: { $0 != "/" }))
    }
}
