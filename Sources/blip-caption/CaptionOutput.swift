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

    struct Timings: Encodable {
        var decode_ms: Double, vision_ms: Double, text_ms: Double
    }

    func write(image: String, result: CaptionResult) {
        if json {
            let t = result.timings
            emit(Line(image: image, candidates: result.candidates,
                      timings: Timings(decode_ms: ms(t.decode), vision_ms: ms(t.vision), text_ms: ms(t.text))))
        } else if result.candidates.count == 1 {
            print("\(image): \(result.candidates[0].text)")
        } else {
            print("\(image):")
            for c in result.candidates { print("  \(c.text)  (score \(String(format: "%.4f", c.score)))") }
        }
    }

    func write(image: String, error: String) {
        if json { emit(Line(image: image, error: error)) }
    }

    private func ms(_ seconds: Double) -> Double { (seconds * 1e5).rounded() / 100 }

    private func emit(_ line: Line) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        guard let data = try? encoder.encode(line) else { return }
        FileHandle.standardOutput.write(data + Data("\n".utf8))
    }
}
