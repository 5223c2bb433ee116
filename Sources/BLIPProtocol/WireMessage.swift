/// A message of the blip.v1 schema that converts to and from its protobuf bytes.
///
/// Every conversion goes through the protobuf-c code generated from proto/ (target
/// `BlipProtoC`), so this module and clients in other languages read the same schema.
public protocol WireMessage: Sendable {
    /// The message's name in the schema, without the package: `"CaptionRequest"`.
    static var messageName: String { get }

    /// Decodes a message from its protobuf bytes.
    /// - Throws: `MessageDecodingError.malformed` when the bytes do not parse as this message,
    ///   `MessageDecodingError.invalidField` when a field holds a value the protocol forbids.
    init(decoding bytes: [UInt8]) throws(MessageDecodingError)

    /// The message's protobuf bytes. Unset optional fields are not written.
    func encoded() -> [UInt8]
}
