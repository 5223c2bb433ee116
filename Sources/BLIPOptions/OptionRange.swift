/// The service limits an option's range can depend on, as Info's `Limits` reports them.
/// `nil` is a limit not known (yet): the ranges that hold on every daemon are checked.
public struct OptionLimits: Sendable, Equatable {
    /// `num_beams` and `num_return_sequences` at most.
    public var maxBeams: Int?
    /// The whole sequence at most: the decoder's positions.
    public var maxTokens: Int?
    /// `bad_words` entries at most.
    public var maxBadWords: Int?
    /// UTF-8 bytes of each bad word at most.
    public var maxTextBytes: Int?

    public init(maxBeams: Int?, maxTokens: Int?, maxBadWords: Int?, maxTextBytes: Int?) {
        self.maxBeams = maxBeams
        self.maxTokens = maxTokens
        self.maxBadWords = maxBadWords
        self.maxTextBytes = maxTextBytes
    }

    /// No service limits: only the ranges that hold whatever the model and the daemon's options.
    public static let unbounded = OptionLimits(maxBeams: nil, maxTokens: nil, maxBadWords: nil, maxTextBytes: nil)
}

/// The upper end of an integer range: a number, a service limit, or none.
public enum OptionBound: Sendable {
    case value(Int)
    case limit(Limit, minus: Int = 0)
    case unbounded

    public enum Limit: Sendable { case maxBeams, maxTokens }

    public func resolved(_ limits: OptionLimits) -> Int? {
        switch self {
        case .value(let v): v
        case .limit(.maxBeams, let minus): limits.maxBeams.map { max(1, $0) - minus }
        case .limit(.maxTokens, let minus): limits.maxTokens.map { max(2, $0) - minus }
        case .unbounded: nil
        }
    }
}

/// The values an option accepts (the engine adds the rules between options, such as
/// `num_return_sequences` ≤ `num_beams`).
public enum OptionRange: Sendable {
    /// `lower...upper`, with a note on a special value ("0 disables it").
    case integers(Int, OptionBound, note: String? = nil)
    /// A finite number that a 32-bit float holds (0 or normal).
    case finite
    /// A finite number > 0 that a 32-bit float holds as a normal number.
    case positive(note: String?)
    /// (0, 1], as a normal 32-bit float.
    case unitInterval(note: String?)
    /// Every value of the type.
    case any
    /// At most `max_bad_words` non-blank words of at most `max_text_bytes` UTF-8 bytes each.
    case words

    /// Why `value` is outside the range, as "must be <allowed>, got <value>" pieces; `nil` when it is inside.
    public func violation(of value: OptionValue, limits: OptionLimits) -> (allowed: String, value: String)? {
        let smallest = "at least \(Float.leastNormalMagnitude) (the smallest normal 32-bit float)"
        func noted(_ text: String, _ note: String?) -> String { note.map { "\(text) (\($0))" } ?? text }
        switch (self, value) {
        case let (.integers(lower, bound, note), .count(v)):
            if let upper = bound.resolved(limits) {
                return (lower...max(lower, upper)).contains(v) ? nil : (noted("in \(lower)...\(upper)", note), "\(v)")
            }
            return v >= lower ? nil : (noted(">= \(lower)", note), "\(v)")
        case let (.finite, .real(v)):
            if !v.isFinite || !Float(v).isFinite { return ("a finite number", "\(Float(v))") }
            return v == 0 || Float(v).isNormal ? nil : ("0 or " + smallest + " in magnitude", "\(Float(v))")
        case let (.positive(note), .real(v)):
            if !(v.isFinite && Float(v).isFinite && v > 0) { return (noted("a finite number > 0", note), "\(Float(v))") }
            return Float(v).isNormal ? nil : (smallest, "\(Float(v))")
        case let (.unitInterval(note), .real(v)):
            if !(v > 0 && v <= 1) { return (noted("in (0, 1]", note), "\(Float(v))") }
            return Float(v).isNormal ? nil : (smallest, "\(Float(v))")
        case let (.words, .words(words)):
            if let most = limits.maxBadWords, words.count > most { return ("at most \(most) words", "\(words.count) words") }
            for word in words {
                // Bytes first (O(1) for native strings): nothing below looks at more than the limit.
                let bytes = word.utf8.count
                if let most = limits.maxTextBytes, bytes > most {
                    return ("words of at most \(most) UTF-8 bytes", "a word of \(bytes) bytes")
                }
                if word.allSatisfy(\.isWhitespace) { return ("non-empty words", "\"\(word)\"") }
            }
            return nil
        case (.any, _):
            return nil
        default:
            return ("a value of another type", "\(value)")
        }
    }
}

extension DecodingOption {
    /// Checks `value` against this option's range under `limits`.
    /// - Throws: ``ParameterError`` naming the option (by its field name) and what it allows.
    public func check(_ value: OptionValue, limits: OptionLimits) throws(ParameterError) {
        if let (allowed, shown) = row.allowed.violation(of: value, limits: limits) {
            throw ParameterError(parameter: rawValue, allowed: allowed, value: shown)
        }
    }
}
