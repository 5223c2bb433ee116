import ArgumentParser
import BLIPCaptionService
import BLIPClient

/// Decoding options, named after transformers' `generate()` parameters in kebab case. Unset options
/// take the daemon's (or, with `--local`, the same in-process service's) defaults: the BLIP paper's
/// COCO setting, beam search with 3 beams, at most 20 tokens in all, at least 5.
///
/// They become a wire `CaptionRequest` here, in one place; `--local` runs that same request through
/// `EngineCaptionService`, so the daemon's option mapping is the only one.
struct DecodingArguments: ParsableArguments {
    @Option(help: ArgumentHelp("Text the caption must start with, e.g. \"a picture of\"; \"\" = none. Repeat for several captions of each image (at most \(EngineCaptionService.maxPrompts)).", valueName: "text")) var prompt: [String] = []
    @Option(help: "Beams for beam search; 1 = greedy (default \(Defaults.options.numBeams!)).") var numBeams: Int?
    @Option(help: "Most tokens to generate, the final [SEP] included; overrides --max-length.") var maxNewTokens: Int?
    @Option(help: "Fewest tokens to generate before [SEP] may end the caption.") var minNewTokens: Int?
    @Option(help: "Most tokens in the whole sequence, [DEC] and prompt included (default \(Defaults.options.maxLength!)).") var maxLength: Int?
    @Option(help: "Fewest tokens in the whole sequence, [DEC] and prompt included (default \(Defaults.options.minLength!)).") var minLength: Int?
    @Option(help: "Beam score = log-prob sum / generated_tokens^length_penalty (default \(Defaults.shown(Defaults.options.lengthPenalty!))).") var lengthPenalty: Float?
    @Option(help: "Penalty > 1 discourages tokens already in the sequence (default \(Defaults.shown(Defaults.options.repetitionPenalty!))).") var repetitionPenalty: Float?
    @Option(help: "Never repeat an n-gram of this size (default \(Defaults.options.noRepeatNgramSize!): off).") var noRepeatNgramSize: Int?
    @Option(help: "Captions to return per image, best first (at most --num-beams).") var numReturnSequences: Int?
    @Flag(help: "Stop beam search as soon as --num-beams captions are finished.") var earlyStopping = false
    @Flag(help: "Sample instead of searching (with --temperature, --top-k, --top-p, --seed).") var doSample = false
    @Option(help: "Sampling temperature > 0 (default \(Defaults.shown(Defaults.options.temperature!))).") var temperature: Float?
    @Option(help: "Sample among the k most likely tokens; 0 = all (default \(Defaults.options.topK!)).") var topK: Int?
    @Option(help: "Sample from the smallest set of tokens whose probability reaches p, in (0, 1] (default \(Defaults.shown(Defaults.options.topP!))).") var topP: Float?
    @Option(help: "Seed for sampling; the same seed gives the same captions.") var seed: UInt64?
    @Option(parsing: .upToNextOption, help: "Words or phrases never to generate (e.g. arafed).") var badWords: [String] = []
    @Flag(help: "Do not apply the EXIF orientation tag (transformers ignores it).") var noExif = false

    func validate() throws {
        for (name, value) in [("--num-beams", numBeams), ("--max-new-tokens", maxNewTokens), ("--min-new-tokens", minNewTokens),
                              ("--max-length", maxLength), ("--min-length", minLength), ("--no-repeat-ngram-size", noRepeatNgramSize),
                              ("--num-return-sequences", numReturnSequences), ("--top-k", topK)] {
            if let value, value < 0 { throw ValidationError("\(name) must be >= 0, got \(value)") }
        }
        if prompt.count > EngineCaptionService.maxPrompts {
            throw ValidationError("--prompt is given \(prompt.count) times; at most \(EngineCaptionService.maxPrompts) prompts per image")
        }
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
