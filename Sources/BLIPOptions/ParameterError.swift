/// A generation parameter outside the range the service accepts.
public struct ParameterError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The parameter as transformers and the wire protocol name it, e.g. `num_beams`.
    public var parameter: String
    /// What is allowed, e.g. `1...8`.
    public var allowed: String
    /// The rejected value as text.
    public var value: String

    public init(parameter: String, allowed: String, value: String) {
        self.parameter = parameter
        self.allowed = allowed
        self.value = value
    }

    public var description: String {
        "\(parameter) must be \(allowed), got \(value)"
    }
}
