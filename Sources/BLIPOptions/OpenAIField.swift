/// An OpenAI chat-completions field that sets a decoding option, with OpenAI's own type and range
/// (checked first, and reported in OpenAI's terms, before the option's own range).
public struct OpenAIField: Sendable {
    /// The field's names, preferred first (`max_completion_tokens` replaced `max_tokens`).
    public let names: [String]
    public let kind: Kind

    public enum Kind: Sendable {
        case integer(minimum: Int)
        case number(minimum: Double, maximum: Double)
        case seed
    }

    public init(names: [String], kind: Kind) {
        self.names = names
        self.kind = kind
    }
}

extension DecodingOption {
    /// The option an OpenAI field sets, if any.
    public init?(openAIField name: String) {
        guard let option = Self.allCases.first(where: { $0.row.openAI?.names.contains(name) == true }) else { return nil }
        self = option
    }
}
