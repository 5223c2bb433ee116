import BLIPClient
import Foundation

/// Writes results to stdout from the `CaptionResponse` alone: one JSON object per (image, prompt)
/// (JSON Lines), or captions for people.
struct CaptionOutput {
    let json: Bool
    /// Whether timings carry `queue_ms`: the daemon's queue wait (`--local` has no queue).
    let reportsQueueWait: Bool

    struct Line: Encodable {
        var image: String
        /// `""` for the unconditional caption; absent on error lines, which are one per image.
        var prompt: String?
        var candidates: [Candidate]?
        var timings: Timings?
        var error: String?
    }

    struct Candidate: Encodable {
        var text: String
        /// The whole sequence, as transformers returns it.
        var token_ids: [UInt32]
        /// The engine computes scores in Float; printing them as Float keeps the digits it wrote.
        var score: Float
        /// `eos` or `length`; absent when the server did not say.
        var finish_reason: String?

        init(_ c: CaptionResponse.Candidate) {
            text = c.text
            token_ids = c.tokenIDs
            score = Float(c.score)
            switch c.finishReason {
            case .unspecified: finish_reason = nil
            case .eos: finish_reason = "eos"
            case .length: finish_reason = "length"
            }
        }
    }

    /// The call's timings: with several prompts, every line of the image repeats them.
    struct Timings: Encodable {
        var decode_ms: Double, vision_ms: Double, text_ms: Double
        var queue_ms: Double?
        /// Present (true) only when the image's features came from the daemon's feature cache.
        var feature_cache_hit: Bool?

        init(_ t: CaptionResponse.Timings, queueWait: Bool) {
            func ms(_ us: UInt64) -> Double { Double(us) / 1000 }
            decode_ms = ms(t.imageDecodeMicroseconds)
            vision_ms = ms(t.visionMicroseconds)
            text_ms = ms(t.textMicroseconds)
            queue_ms = queueWait ? ms(t.queueWaitMicroseconds) : nil
            feature_cache_hit = t.featureCacheHit ? true : nil
        }
    }

    /// One image's answer.
    /// - Parameters:
    ///   - prompt: The request's single `prompt` (`nil` for none); ignored when the response has
    ///     `results`, which name their prompts.
    func write(image: String, response: CaptionResponse, prompt: String?) {
        let results = response.promptResults(prompt: prompt)
        if json {
            let timings = Timings(response.timings, queueWait: reportsQueueWait)
            for result in results {
                emit(Line(image: image, prompt: result.prompt, candidates: result.candidates.map(Candidate.init), timings: timings))
            }
        } else if results.count == 1 {
            emit(text: "\(image):" + Self.plain(results[0].candidates, indent: "  "))
        } else {
            // One block per image; each prompt labelled, its captions after it or indented below it.
            emit(text: "\(image):\n" + results.map { result in
                let label = result.prompt.isEmpty ? "(no prompt)" : String(reflecting: result.prompt)
                return "  \(label):" + Self.plain(result.candidates, indent: "    ")
            }.joined(separator: "\n"))
        }
    }

    func write(image: String, error: String) {
        if json { emit(Line(image: image, error: error)) }
    }

    /// One caption: ` text` on the label's line; several: one indented line each, with its score.
    private static func plain(_ candidates: [CaptionResponse.Candidate], indent: String) -> String {
        if candidates.count == 1 { return " \(candidates[0].text)" }
        return candidates.map { "\n\(indent)\($0.text)  (score \(String(format: "%.4f", Float($0.score))))" }.joined()
    }

    private func emit(text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    private func emit(_ line: Line) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        guard let data = try? encoder.encode(line) else { return }
        FileHandle.standardOutput.write(data + Data("\n".utf8))
    }
}
