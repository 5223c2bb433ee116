/// What type an option's value has (on the wire: `uint32`, `double`, `bool`, `uint64`, `repeated string`).
public enum OptionKind: Sendable, Equatable {
    case count
    case real
    case flag
    case seed
    case words
}

/// An option's value. Counts are `Int` so that a negative value from a command line or JSON can be
/// named before anything narrows it to the wire's `uint32`.
public enum OptionValue: Sendable, Hashable, CustomStringConvertible {
    case count(Int)
    case real(Double)
    case flag(Bool)
    case seed(UInt64)
    case words([String])

    public var description: String {
        switch self {
        case .count(let v): "\(v)"
        case .real(let v): "\(v)"
        case .flag(let v): "\(v)"
        case .seed(let v): "\(v)"
        case .words(let v): v.map { "\"\($0)\"" }.joined(separator: ", ")
        }
    }

    public var count: Int? { if case .count(let v) = self { v } else { nil } }
    public var real: Double? { if case .real(let v) = self { v } else { nil } }
    public var flag: Bool? { if case .flag(let v) = self { v } else { nil } }
    public var seed: UInt64? { if case .seed(let v) = self { v } else { nil } }
    public var words: [String]? { if case .words(let v) = self { v } else { nil } }
}
