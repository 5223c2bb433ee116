import ArgumentParser
import BLIPCaptionService
import BLIPClient
import BLIPEngine

/// Decoding options: one flag per row of the option table (``DecodingOption``), named after its
/// field in kebab case, its help and default read from the row. Unset options take the daemon's
/// (or, with `--local`, the same in-process service's) defaults.
///
/// They become a wire `CaptionRequest` here, in one place; `--local` runs that same request through
/// `EngineCaptionService`, so the daemon's option mapping is the only one.
struct DecodingArguments: ParsableArguments {
    @Option(help: ArgumentHelp("Text the caption must start with, e.g. \"a picture of\"; \"\" = none. Repeat for several captions of each image (at most \(EngineCaptionService.maxPrompts)).", valueName: "text")) var prompt: [String] = []
    @Option(parsing: .unconditional, help: .row(.numBeams)) var numBeams: Int?
    @Option(parsing: .unconditional, help: .row(.maxNewTokens)) var maxNewTokens: Int?
    @Option(parsing: .unconditional, help: .row(.minNewTokens)) var minNewTokens: Int?
    @Option(parsing: .unconditional, help: .row(.maxLength)) var maxLength: Int?
    @Option(parsing: .unconditional, help: .row(.minLength)) var minLength: Int?
    @Option(parsing: .unconditional, help: .row(.lengthPenalty)) var lengthPenalty: Double?
    @Option(parsing: .unconditional, help: .row(.repetitionPenalty)) var repetitionPenalty: Double?
    @Option(parsing: .unconditional, help: .row(.noRepeatNgramSize)) var noRepeatNgramSize: Int?
    @Option(parsing: .unconditional, help: .row(.numReturnSequences)) var numReturnSequences: Int?
    @Flag(help: .row(.earlyStopping)) var earlyStopping = false
    @Flag(help: .row(.doSample)) var doSample = false
    @Option(parsing: .unconditional, help: .row(.temperature)) var temperature: Double?
    @Option(parsing: .unconditional, help: .row(.topK)) var topK: Int?
    @Option(parsing: .unconditional, help: .row(.topP)) var topP: Double?
    @Option(parsing: .unconditional, help: .row(.seed)) var seed: UInt64?
    @Option(help: .row(.badWords, valueName: "text", repeated: true)) var badWords: [String] = []
    @Flag(help: "Do not apply the EXIF orientation tag (transformers ignores it).") var noExif = false

    /// The options given, by row: the one place a flag's property meets its row.
    var values: [DecodingOption: OptionValue] {
        var values: [DecodingOption: OptionValue] = [:]
        values[.numBeams] = numBeams.map(OptionValue.count)
        values[.maxNewTokens] = maxNewTokens.map(OptionValue.count)
        values[.minNewTokens] = minNewTokens.map(OptionValue.count)
        values[.maxLength] = maxLength.map(OptionValue.count)
        values[.minLength] = minLength.map(OptionValue.count)
        values[.lengthPenalty] = lengthPenalty.map(OptionValue.real)
        values[.repetitionPenalty] = repetitionPenalty.map(OptionValue.real)
        values[.noRepeatNgramSize] = noRepeatNgramSize.map(OptionValue.count)
        values[.numReturnSequences] = numReturnSequences.map(OptionValue.count)
        values[.earlyStopping] = earlyStopping ? .flag(true) : nil
        values[.doSample] = doSample ? .flag(true) : nil
        values[.temperature] = temperature.map(OptionValue.real)
        values[.topK] = topK.map(OptionValue.count)
        values[.topP] = topP.map(OptionValue.real)
        values[.seed] = seed.map(OptionValue.seed)
        values[.badWords] = badWords.isEmpty ? nil : .words(badWords)
        return values
    }

    /// Checks the options once, before any image is read or sent, against the table's ranges that
    /// hold on every daemon (``checked(against:)`` adds the daemon's own limits).
    func validate() throws {
        if prompt.count > EngineCaptionService.maxPrompts {
            throw ValidationError("--prompt is given \(prompt.count) times; at most \(EngineCaptionService.maxPrompts) prompts per image")
        }
        try checked(against: nil)
    }

    /// Checks every option against its row under `limits` (a daemon's Info; `nil`: only what holds
    /// everywhere), then the rules between options as the engine states them.
    /// - Throws: `ValidationError` naming the flag: ArgumentParser prints it with the usage and
    ///   exits 64.
    func checked(against limits: InfoResponse.Limits?) throws {
        let optionLimits = limits?.optionLimits ?? .unbounded
        do {
            for option in DecodingOption.allCases {
                if let value = values[option] { try option.check(value, limits: optionLimits) }
            }
            for text in prompt.isEmpty ? [nil] : prompt.map(Optional.some) {
                _ = try EngineCaptionService.parameters(wireOptions, prompt: text)
                    .validated(maxPositions: limits?.optionLimits.maxTokens ?? Int(Int32.max),
                               limits: limits.map(Self.generationLimits) ?? Self.anyDaemonLimits)
            }
        } catch {
            throw ValidationError(Self.userFacing(error, limits: limits))
        }
    }

    /// The engine's limits from a daemon's Info; a limit left at 0 (unset) is no limit.
    static func generationLimits(_ l: InfoResponse.Limits) -> GenerationLimits {
        func known(_ value: UInt32) -> Int { value == 0 ? Int(Int32.max) : Int(value) }
        return GenerationLimits(maxBeams: known(l.maxBeams), maxReturnSequences: known(l.maxBeams), maxBadWords: known(l.maxBadWords),
                                maxTextBytes: known(l.maxTextBytes), maxBadWordTokens: known(l.maxBadWordTokens))
    }

    /// No service limits: a daemon may be configured with more beams or bad words than the
    /// defaults, so only the engine's own ranges are checked before the daemon's Info is known.
    private static let anyDaemonLimits = GenerationLimits(
        maxBeams: Int(Int32.max), maxReturnSequences: Int(Int32.max), maxBadWords: Int(Int32.max), maxTextBytes: Int(Int32.max), maxBadWordTokens: Int(Int32.max))

    /// The engine names options by their fields (`top_p`, also inside the allowed range: "num_beams
    /// 1 without do_sample"); the CLI's flags are `--top-p`, `--num-beams`. A range that comes from
    /// the daemon's limits says so.
    static func userFacing(_ error: ParameterError, limits: InfoResponse.Limits?) -> String {
        let allowed = flagged(error.allowed)
        let option = DecodingOption(rawValue: error.parameter)
        let fromDaemon = limits != nil && option.map { Self.dependsOnLimits($0) } == true ? " on this daemon (its Info limits)" : ""
        let name = option?.flag ?? flagged(error.parameter)
        return "\(name) must be \(allowed)\(fromDaemon), got \(error.value)"
    }

    static func dependsOnLimits(_ option: DecodingOption) -> Bool {
        switch option.row.allowed {
        case .integers(_, .limit, _), .words: true
        default: false
        }
    }

    /// `text` with every option's field name (`num_beams`) written as its flag (`--num-beams`).
    static func flagged(_ text: String) -> String {
        text.replacing(/[a-z]+(?:_[a-z]+)+/) { match in
            DecodingOption(rawValue: String(match.output))?.flag ?? String(match.output)
        }
    }

    /// Options given that have no effect with the others, as transformers' `generate()` warns
    /// about them (`GenerationConfig.validate`): one line each, for stderr.
    var ignoredOptionWarnings: [String] {
        var warnings: [String] = []
        let given = values
        if !doSample {
            for option: DecodingOption in [.temperature, .topK, .topP, .seed] where given[option] != nil {
                warnings.append("\(option.flag) has no effect without --do-sample (it only changes sampling); ignoring it")
            }
        }
        if maxNewTokens != nil && maxLength != nil {
            warnings.append("--max-new-tokens and --max-length are both given; --max-new-tokens takes precedence, ignoring --max-length")
        }
        if minNewTokens != nil && minLength != nil {
            warnings.append("--min-new-tokens and --min-length are both given; --min-new-tokens takes precedence, ignoring --min-length")
        }
        if (numBeams ?? DecodingOption.defaultNumBeams(doSample: doSample)) == 1 {
            for option: DecodingOption in [.earlyStopping, .lengthPenalty] where given[option] != nil {
                warnings.append("\(option.flag) has no effect with one beam (it only changes beam search); ignoring it")
            }
        }
        return warnings
    }

    /// The request for one image: one `--prompt` (or none) as the single `prompt`, two or more as
    /// `prompts` (answered in `CaptionResponse.results`, one per prompt, in order).
    func request(image: [UInt8]) -> CaptionRequest {
        CaptionRequest(image: .init(data: image, applyEXIFOrientation: noExif ? false : nil),
                       prompt: prompt.count == 1 ? prompt[0] : nil, options: wireOptions,
                       prompts: prompt.count > 1 ? prompt : [])
    }

    /// The options for the wire: unset stays unset, so the server's defaults apply. Counts are
    /// clamped to `uint32` (a negative one never gets here: ``validate()`` refuses it).
    var wireOptions: DecodingOptions {
        var options = DecodingOptions()
        for (option, value) in values {
            options[option] = value.count.map { .count(Int(UInt32(clamping: $0))) } ?? value
        }
        return options
    }
}

extension ArgumentHelp {
    /// A flag's help from its row: the row's text with field names as flags, and the default.
    static func row(_ option: DecodingOption, valueName: String? = nil, repeated: Bool = false) -> ArgumentHelp {
        var text = DecodingArguments.flagged(option.row.help)
        if repeated { text += " Repeat the flag for several." }
        if let value = option.row.defaultValue, option.row.kind != .flag, option.row.kind != .words {
            text += " (default \(value.shown))"
        }
        return ArgumentHelp(text, valueName: valueName)
    }
}

extension OptionValue {
    /// As help text shows a default: `1` rather than `1.0`.
    var shown: String {
        if let real { return String(format: "%g", real) }
        return description
    }
}
