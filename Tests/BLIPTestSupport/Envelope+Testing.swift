import BLIPProtocol

/// Shorthands for checking answers.
extension Envelope {
    /// The response status's code.
    public var statusCode: StatusCode { responseStatus.code }
    /// The response status's message.
    public var statusMessage: String { responseStatus.message }

    /// The payload decoded as a Caption response.
    /// - Throws: The decoding error.
    public func caption() throws -> CaptionResponse { try CaptionResponse(decoding: payload) }
}
