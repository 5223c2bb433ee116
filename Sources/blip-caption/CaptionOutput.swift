import BLIPEngine
import Foundation

/// Writes results to stdout: one JSON object per image (JSON Lines) or captions for people.
struct CaptionOutput {
    let json: Bool

    struct Line: Encodable {
        var image: String
        var candidates: [CaptionCandidate]?
        var timings: Timings?
        var error: String?
    }

    struct Timings: Encodable, Sendable {
        var decode_ms: Double, vision_ms: Double, text_ms: Double
        var queue_ms: Double? = nil
    }

    func write(image: String, outcome: CaptionBackend.Outcome) {
        if json {
            emit(Line(image: image, candidates: outcome.candidates, timings: outcome.timings))
        } else if outcome.candidates.count == 1 {
            emit(text: "\(image): \(outcome.candidates[0].text)")
        } else {
            emit(text: "\(image):\n" + outcome.candidates.map { "  \($0.text)  (score \(String(format: "%.4f", $0.score)))" }.joined(separator: "\n"))
        }
    }

    func write(image: String, error: String) {
        if json { emit(Line(image: image, error: error)) }
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
