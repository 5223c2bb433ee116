import BLIPEngine
import Foundation

/// `blip-bench --model DIR --precision-report IMAGES_DIR`: every precision against fp32 on the same
/// model and images, one JSON object. Per precision:
/// - `vision_s`: the vision encoder on the first image (median of `runs`, after a warm-up);
/// - `caption_s`: a beam-3 caption of exactly `newTokens` new tokens of the first image, from its
///   bytes (median of `runs`, warm);
/// - `encoder_rel_error_mean`/`_max`: ‖f − f₃₂‖/‖f₃₂‖ of the vision features over the images;
/// - `top1_agreement`: the decoder teacher-forced on fp32's greedy tokens (each precision from its
///   own features), the share of steps whose argmax is fp32's next token; `steps` counts them;
/// - `identical_captions`: the share of default captions (beam 3, `newTokens` new tokens at most)
///   token-identical to fp32's.
/// Also the plan each precision ran as on this CPU (`instruction_path`, `warning`).
struct PrecisionReport {
    let folder: ModelFolder
    let images: [URL]
    let runs: Int
    let newTokens: Int

    /// What fp32 gives for one image: the references the other precisions are measured against.
    private struct Reference {
        let features: [Float]
        let greedy: [Int32]
        let caption: [Int32]
    }

    func run() throws -> [String: Any] {
        var references: [Reference] = []
        var out: [String: Any] = [:]
        for precision in Precision.allCases {
            out[precision.rawValue] = try measure(precision, references: &references)
        }
        return out
    }

    private func measure(_ precision: Precision, references: inout [Reference]) throws -> [String: Any] {
        let captioner = try Captioner(folder: folder, precision: precision)
        let m = captioner.model, vc = m.config.vision, p = m.preprocessor
        let normalizer = ImageNormalizer(imageSize: p.imageSize, mean: p.imageMean, std: p.imageStd, rescaleFactor: p.rescaleFactor)
        let state = VisionState(config: vc)
        let pixels = UnsafeMutableBufferPointer<Float>.allocate(capacity: 3 * p.imageSize * p.imageSize)
        let count = vc.tokenCount * vc.hiddenSize
        let features = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
        defer { pixels.deallocate(); features.deallocate() }
        let bos = m.config.text.bosTokenID
        let generator = Generator(eosTokenID: m.config.text.sepTokenID, padTokenID: m.config.text.padTokenID)
        let greedy = PrecisionComparison.argmaxParameters(newTokens: newTokens)
        var beam = GenerationParameters()
        beam.numBeams = 3
        beam.maxNewTokens = newTokens

        var errors: [Double] = [], agreeing = 0, steps = 0, identical = 0
        for (index, url) in images.enumerated() {
            let bytes = try [UInt8](Data(contentsOf: url))
            normalizer.pixelValues(from: try ImageDecoder.decode(bytes), into: pixels)
            m.encodeImage(pixels: UnsafePointer(pixels.baseAddress!), into: features.baseAddress!, state: state)
            let caption = try captioner.caption(image: bytes, parameters: beam).candidates[0].tokenIDs
            if precision == .float32 {
                let tokens = try generator.generate(prefix: [bos], parameters: greedy, badWordIDs: [],
                                                    model: m.makeSession(features: features.baseAddress!, maxRows: 1, maxLength: 1 + newTokens),
                                                    checkpoint: {})[0].tokenIDs
                references.append(Reference(features: Array(features), greedy: tokens, caption: caption))
            }
            let reference = references[index]
            errors.append(PrecisionComparison.relativeError(UnsafeBufferPointer(features), reference: reference.features))
            let forced = try PrecisionComparison.teacherForcedAgreement(model: m, features: features.baseAddress!, tokens: reference.greedy)
            agreeing += forced.agreeing
            steps += forced.steps
            if caption == reference.caption { identical += 1 }
        }

        // Timings on the first image, warm.
        let first = try [UInt8](Data(contentsOf: images[0]))
        normalizer.pixelValues(from: try ImageDecoder.decode(first), into: pixels)
        let vision = try median(runs) {
            m.encodeImage(pixels: UnsafePointer(pixels.baseAddress!), into: features.baseAddress!, state: state)
        }
        var timed = beam
        timed.minNewTokens = newTokens
        let caption = try median(runs) { _ = try captioner.caption(image: first, parameters: timed) }

        var result: [String: Any] = [
            "instruction_path": m.precision.instructionPath,
            "vision_s": vision, "caption_s": caption,
            "encoder_rel_error_mean": errors.reduce(0, +) / Double(errors.count),
            "encoder_rel_error_max": errors.max() ?? 0,
            "top1_agreement": steps > 0 ? Double(agreeing) / Double(steps) : 0, "steps": steps,
            "identical_captions": Double(identical) / Double(images.count),
        ]
        if let warning = m.precision.warning { result["warning"] = warning }
        return result
    }

    private func median(_ runs: Int, _ body: () throws -> Void) throws -> Double {
        try body()  // warm-up
        let clock = ContinuousClock()
        var times: [Double] = []
        for _ in 0..<max(1, runs) {
            let start = clock.now
            try body()
            let elapsed = clock.now - start
            times.append(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18)
        }
        return times.sorted()[times.count / 2]
    }
}
