import BLIPEngine
import Foundation

/// Times each stage of captioning one image with the engine; every figure is the median of `runs`.
struct EngineBenchmark {
    let captioner: Captioner
    let image: [UInt8]
    let runs: Int
    /// New tokens per caption (min = max, so every run does the same work).
    let newTokens: Int
    /// Stage names to run (nil: all): decode, vision, cross, greedy_step, beam3_step, batch4_step, captions.
    let only: Set<String>?

    private func wanted(_ stage: String) -> Bool { only?.contains(stage) ?? true }

    var model: BlipModel { captioner.model }

    func run() throws -> [String: Double] {
        var out: [String: Double] = [:]
        let vc = model.config.vision, p = model.preprocessor
        let normalizer = ImageNormalizer(imageSize: p.imageSize, mean: p.imageMean, std: p.imageStd, rescaleFactor: p.rescaleFactor)
        let pixels = UnsafeMutableBufferPointer<Float>.allocate(capacity: 3 * p.imageSize * p.imageSize)
        let features = UnsafeMutablePointer<Float>.allocate(capacity: vc.tokenCount * vc.hiddenSize)
        defer { pixels.deallocate(); features.deallocate() }

        if wanted("decode") { out["decode_preprocess_s"] = try median {
            let rgb = try ImageDecoder.decode(image, applyEXIFOrientation: false)
            normalizer.pixelValues(from: rgb, into: pixels)
        } }
        do {
            let rgb = try ImageDecoder.decode(image, applyEXIFOrientation: false)
            normalizer.pixelValues(from: rgb, into: pixels)
        }
        let state = VisionState(config: vc)
        if wanted("vision") { out["vision_s"] = try median {
            model.encodeImage(pixels: UnsafePointer(pixels.baseAddress!), into: features, state: state)
        } } else {
            model.encodeImage(pixels: UnsafePointer(pixels.baseAddress!), into: features, state: state)
        }
        let maxLength = 1 + newTokens
        if wanted("cross") { out["cross_kv_s"] = try median {
            _ = model.makeSession(features: features, maxRows: 1, maxLength: maxLength)
        } }
        if wanted("greedy_step") { out["greedy_step_s"] = try stepTime(features: features, rows: 1, maxLength: maxLength) }
        if wanted("beam3_step") { out["beam3_step_s"] = try stepTime(features: features, rows: 3, maxLength: maxLength) }
        if wanted("captions") { try captions(into: &out) }
        // Peak RSS of one caption at a time (the target) before four sessions exist at once.
        out["peak_rss_bytes"] = Double(ProcessInfoLinux.peakRSSBytes())
        if wanted("batch4_step") {
            out["batch4_beam3_step_s"] = try stepTime(features: features, rows: 3, maxLength: maxLength, captions: 4)
            out["peak_rss_batch4_bytes"] = Double(ProcessInfoLinux.peakRSSBytes())
        }
        return out
    }

    /// Whole captions, greedy and beam 3, with exactly `newTokens` new tokens.
    private func captions(into out: inout [String: Double]) throws {
        var greedy = GenerationParameters()
        greedy.numBeams = 1
        greedy.maxNewTokens = newTokens
        greedy.minNewTokens = newTokens
        var beam = greedy
        beam.numBeams = 3
        for (key, parameters) in [("caption_greedy_s", greedy), ("caption_beam3_s", beam)] {
            var tokens = 0
            out[key] = try median {
                let result = try captioner.caption(image: image, parameters: parameters, applyEXIFOrientation: false)
                tokens = result.candidates[0].tokenIDs.count - 1
            }
            guard tokens == newTokens else { throw BenchError.wrongLength(key, tokens) }
        }
    }

    /// Median time of one decoder step with `rows` rows over a whole caption's positions, as the
    /// generator drives it: the `[DEC]` step on one row, widened to `rows`, then steps to `maxLength`.
    /// With `captions` > 1, that many sessions (the same image) step together as concurrent
    /// captions do in the daemon (`BatchedStep`, as the engine loop runs it).
    func stepTime(features: UnsafePointer<Float>, rows: Int, maxLength: Int, captions: Int = 1) throws -> Double {
        var times: [Double] = []
        let together = BatchedStep(decoder: model.text)
        for _ in 0..<runs {
            let sessions = (0..<captions).map { _ in model.makeSession(features: features, maxRows: rows, maxLength: maxLength) }
            let first = sessions.map { _ in [model.config.text.bosTokenID] }
            try together.step(sessions, tokens: first)
            for s in sessions { s.reorder(Array(repeating: 0, count: rows)) }
            let tokens = sessions.indices.map { c in (0..<rows).map { Int32(1037 + $0 + 7 * c) } }
            for _ in 1..<maxLength {
                if captions == 1 {
                    times.append(try Stopwatch.time { _ = try sessions[0].step(tokens[0]) })
                } else {
                    times.append(try Stopwatch.time { try together.step(sessions, tokens: tokens) })
                }
            }
        }
        return Stats.median(times)
    }

    private func median(_ body: () throws -> Void) throws -> Double {
        try body()  // warm-up: page in the weights, size OpenBLAS's buffers
        var times: [Double] = []
        for _ in 0..<runs { times.append(try Stopwatch.time(body)) }
        return Stats.median(times)
    }
}

enum BenchError: Error, CustomStringConvertible {
    case usage(String)
    case wrongLength(String, Int)

    var description: String {
        switch self {
        case .usage(let m): m
        case .wrongLength(let k, let n): "\(k): generated \(n) tokens, not the requested number (is min_new_tokens honoured?)"
        }
    }
}
