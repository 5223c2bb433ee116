import BLIPProtocol
import Testing

/// The option table against the proto: one row per `DecodingOptions` field, same number and type;
/// the wire encoding, the defaults and Info's JSON all come from the rows.
@Suite struct DecodingOptionTableTests {
    @Test func everyProtoFieldHasOneRowOfItsType() {
        let fields = DecodingOptions.protoFields
        #expect(fields.count == DecodingOption.allCases.count, "\(fields.map(\.name))")
        for field in fields {
            let row = DecodingOption(rawValue: field.name)
            #expect(row != nil, "captioner.proto's DecodingOptions.\(field.name) has no row in DecodingOption")
            #expect(field.matchesRow, "\(field.name): the row's number or kind differs from the proto's")
        }
        #expect(Set(fields.map(\.name)) == Set(DecodingOption.allCases.map(\.rawValue)))
    }

    /// Each option alone survives the wire, at the edges of its type.
    @Test(arguments: DecodingOption.allCases)
    func eachRowRoundTripsThroughTheWire(_ option: DecodingOption) throws {
        let values: [OptionValue] = switch option.row.kind {
        case .count: [.count(0), .count(7), .count(Int(UInt32.max))]
        case .real: [.real(0), .real(-2.5), .real(1e300)]
        case .flag: [.flag(false), .flag(true)]
        case .seed: [.seed(0), .seed(.max)]
        case .words: [.words(["a"]), .words(["arafed", "two words", ""])]
        }
        for value in values {
            var options = DecodingOptions()
            options[option] = value
            let request = CaptionRequest(image: .init(data: [1]), options: options)
            let decoded = try CaptionRequest(decoding: request.encoded())
            #expect(decoded.options[option] == value, "\(option) = \(value)")
            for other in DecodingOption.allCases where other != option {
                #expect(decoded.options[other] == nil, "\(other) stays unset when only \(option) is set")
            }
        }
    }

    /// The documented defaults are the rows' defaults, and only the rows without one stay unset.
    @Test func documentedDefaultsAreTheRows() {
        for option in DecodingOption.allCases {
            #expect(DecodingOptions.documentedDefaults[option] == option.row.defaultValue.flatMap { $0 == .words([]) ? nil : $0 },
                    "\(option)")
        }
        #expect(DecodingOption.defaultNumBeams(doSample: false) == 3 && DecodingOption.defaultNumBeams(doSample: true) == 1)
    }

    /// Ranges: static where no limit applies, the limit's bound once it is known.
    @Test func rangesNameTheOptionAndTheLimit() {
        func message(_ option: DecodingOption, _ value: OptionValue, _ limits: OptionLimits = .unbounded) -> String? {
            do { try option.check(value, limits: limits); return nil } catch { return error.description }
        }
        let daemon = OptionLimits(maxBeams: 8, maxTokens: 512, maxBadWords: 2, maxTextBytes: 4)
        #expect(message(.numBeams, .count(9)) == nil)
        #expect(message(.numBeams, .count(9), daemon) == "num_beams must be in 1...8, got 9")
        #expect(message(.numBeams, .count(0)) == "num_beams must be >= 1, got 0")
        #expect(message(.maxNewTokens, .count(512), daemon) == "max_new_tokens must be in 1...511, got 512")
        #expect(message(.topP, .real(0)) == "top_p must be in (0, 1] (1 disables top-p), got 0.0")
        #expect(message(.temperature, .real(1e-40)) == "temperature must be at least 1.1754944e-38 (the smallest normal 32-bit float), got 1e-40")
        #expect(message(.lengthPenalty, .real(-3)) == nil)
        #expect(message(.badWords, .words(["a", "b", "c"]), daemon) == "bad_words must be at most 2 words, got 3 words")
        #expect(message(.badWords, .words(["toolong"]), daemon) == "bad_words must be words of at most 4 UTF-8 bytes, got a word of 7 bytes")
        #expect(message(.badWords, .words([" "])) == "bad_words must be non-empty words, got \" \"")
        #expect(message(.seed, .seed(.max)) == nil)
    }
}
