import ArgumentParser
import BLIPCaptionService
import BLIPClient
import BLIPEngine

/// Decoding options, named after transformers' `generate()` parameters in kebab case. Unset options
/// take the daemon's (or, with `--local`, the same in-process service's) defaults: the BLIP paper's
/// COCO setting, beam search with 3 beams, at most 20 tokens in all, at least 5.
///
/// They become a wire `CaptionRequest` here, in one place; `--local` runs that same request through
/// `EngineCaptionService`, so the daemon's option mapping is the only one.
struct DecodingArguments: ParsableArguments {
    @Option(help: ArgumentHelp("Text the caption must start with, e.g. \"a picture of\"; \"\" = none. Repeat for several captions of each image (at most \(EngineCaptionService.maxPrompts)).", valueName: "text")) var prompt: [String] = []
    @Option(parsing: .unconditional, help: "Beams for beam search; 1 = greedy (default \(Defaults.options.numBeams!)).") var numBeams: Int?
    @Option(parsing: .unconditional, help: "Most tokens to generate, the final [SEP] included; overrides --max-length.") var maxNewTokens: Int?
    @Option(parsing: .unconditional, help: "Fewest tokens to generate before [SEP] may end the caption.") var minNewTokens: Int?
    @Option(parsing: .unconditional, help: "Most tokens in the whole sequence, [DEC] and prompt included (default \(Defaults.options.maxLength!)).") var maxLength: Int?
    @Option(parsing: .unconditional, help: "Fewest tokens in the whole sequence, [DEC] and prompt included (default \(Defaults.options.minLength!)).") var minLength: Int?
    @Option(parsing: .unconditional, help: "Beam score = log-prob sum / generated_tokens^length_penalty (default \(Defaults.shown(Defaults.options.lengthPenalty!))).") var lengthPenalty: Float?
    @Option(parsing: .unconditional, help: "Penalty > 1 discourages tokens already in the sequence (default \(Defaults.shown(Defaults.options.repetitionPenalty!))).") var repetitionPenalty: Float?
    @Option(parsing: .unconditional, help: "Never repeat an n-gram of this size (default \(Defaults.options.noRepeatNgramSize!): off).") var noRepeatNgramSize: Int?
    @Option(parsing: .unconditional, help: "Captions to return per image, best first (at most --num-beams).") var numReturnSequences: Int?
    @Flag(help: "Stop beam search as soon as --num-beams captions are finished.") var earlyStopping = false
    @Flag(help: "Sample instead of searching (with --temperature, --top-k, --top-p, --seed).") var doSample = false
    @Option(parsing: .unconditional, help: "Sampling temperature > 0 (default \(Defaults.shown(Defaults.options.temperature!))).") var temperature: Float?
    @Option(parsing: .unconditional, help: "Sample among the k most likely tokens; 0 = all (default \(Defaults.options.topK!)).") var topK: Int?
    @Option(parsing: .unconditional, help: "Sample from the smallest set of tokens whose probability reaches p, in (0, 1] (default \(Defaults.shown(Defaults.options.topP!))).") var topP: Float?
    @Option(parsing: .unconditional, help: "Seed for sampling; the same seed gives the same captions.") var seed: UInt64?
    @Option(help: ArgumentHelp("A word or phrase never to generate (e.g. arafed); repeat the flag for several.", valueName: "text")) var badWords: [String] = []
    @Flag(help: "Do not apply the EXIF orientation tag (transformers ignores it).") var noExif = false

    /// Checks the options once, before any image is read or sent: the ranges the engine accepts
    /// whatever the model (lengths that depend on the model's positions, and the daemon's own
    /// limits such as --max-beams, are still checked per call by the daemon).
    func validate() throws {
        if prompt.count > EngineCaptionService.maxPrompts {
            throw ValidationError("--prompt is given \(prompt.count) times; at most \(EngineCaptionService.maxPrompts) prompts per image")
        }
        for (name, value) in [("--num-beams", numBeams), ("--max-new-tokens", maxNewTokens), ("--min-new-tokens", minNewTokens),
                              ("--max-length", maxLength), ("--min-length", minLength), ("--no-repeat-ngram-size", noRepeatNgramSize),
                              ("--num-return-sequences", numReturnSequences), ("--top-k", topK)] {
            if let value, value < 0 { throw ValidationError("\(name) must be >= 0, got \(value)") }
        }
        for text in prompt.isEmpty ? [nil] : prompt.map(Optional.some) {
            do {
                _ = try EngineCaptionService.parameters(wireOptions, prompt: text)
                    .validated(maxPositions: Int(Int32.max), limits: Self.anyDaemonLimits)
            } catch {
                throw ValidationError(Self.userFacing(error))
            }
        }
    }

    /// No service limits: a daemon may be configured with more beams or bad words than the
    /// defaults, so only the engine's own ranges are checked here.
    private static let anyDaemonLimits = GenerationLimits(
        maxBeams: Int(Int32.max), maxReturnSequences: Int(Int32.max), maxBadWords: Int(Int32.max), maxTextBytes: Int(Int32.max), maxBadWordTokens: Int(Int32.max))

    /// The engine names parameters as transformers does (`top_p`, also inside the allowed range:
    /// "num_beams 1 without do_sample"); the CLI's flags are `--top-p`, `--num-beams`.
    static func userFacing(_ error: ParameterError) -> String {
        func flag(_ name: Substring) -> String { "--" + name.replacingOccurrences(of: "_", with: "-") }
        let allowed = error.allowed.replacing(/[a-z]+(?:_[a-z]+)+/) { flag($0.output) }
        return "\(flag(Substring(error.parameter))) must be \(allowed), got \(error.value)"
    }

    /// Options given that have no effect with the others, as transformers' `generate()` warns
    /// about them (`GenerationConfig.validate`): one line each, for stderr.
    var ignoredOptionWarnings: [String] {
        var warnings: [String] = []
        if !doSample {
            let sampling = [("--temperature", temperature != nil), ("--top-k", topK != nil), ("--top-p", topP != nil), ("--seed", seed != nil)]
            for (flag, given) in sampling where given {
                warnings.append("\(flag) has no effect without --do-sample (it only changes sampling); ignoring it")
            }
        }
        if maxNewTokens != nil && maxLength != nil {
            warnings.append("--max-new-tokens and --max-length are both given; --max-new-tokens takes precedence, ignoring --max-length")
        }
        if minNewTokens != nil && minLength != nil {
            warnings.append("--min-new-tokens and --min-length are both given; --min-new-tokens takes precedence, ignoring --min-length")
        }
        let beams = numBeams ?? (doSample ? 1 : Defaults.options.numBeams.map(Int.init) ?? 1)
        if beams == 1 {
            if earlyStopping { warnings.append("--early-stopping has no effect with one beam (it only changes beam search); ignoring it") }
            if lengthPenalty != nil { warnings.append("--length-penalty has no effect with one beam (it only changes beam search); ignoring it") }
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

    /// The options for the wire: unset stays unset, so the server's defaults apply.
    var wireOptions: DecodingOptions {
        DecodingOptions(
            numBeams: numBeams.map(UInt32.init(clamping:)) ?? (doSample ? 1 : nil),
            maxNewTokens: maxNewTokens.map(UInt32.init(clamping:)), minNewTokens: minNewTokens.map(UInt32.init(clamping:)),
            maxLength: maxLength.map(UInt32.init(clamping:)), minLength: minLength.map(UInt32.init(clamping:)),
            lengthPenalty: lengthPenalty.map(Double.init), repetitionPenalty: repetitionPenalty.map(Double.init),
            noRepeatNgramSize: noRepeatNgramSize.map(UInt32.init(clamping:)),
            numReturnSequences: numReturnSequences.map(UInt32.init(clamping:)),
            earlyStopping: earlyStopping ? true : nil, doSample: doSample ? true : nil,
            temperature: temperature.map(Double.init), topK: topK.map(UInt32.init(clamping:)), topP: topP.map(Double.init),
            seed: seed, badWords: badWords)
    }
}

/// The defaults the help quotes: the engine's own table (what Info reports), not restated.
private enum Defaults {
    static let options = EngineCaptionService.engineDefaults
    static func shown(_ value: Double) -> String { String(format: "%g", value) }
}
