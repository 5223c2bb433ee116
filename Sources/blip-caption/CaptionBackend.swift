import BLIPClient
import BLIPEngine
import Foundation

/// Where captions come from: the engine in this process (`--local`) or blip-captiond.
enum CaptionBackend: Sendable {
    case local(Captioner)
    case daemon(CaptionClient)

    struct Outcome: Sendable {
        var candidates: [CaptionCandidate]
        var timings: CaptionOutput.Timings
    }

    func caption(_ image: [UInt8], arguments: DecodingArguments, timeout: Duration) async throws -> Outcome {
        switch self {
        case .local(let captioner):
            let r = try captioner.caption(image: image, parameters: arguments.parameters, applyEXIFOrientation: !arguments.noExif)
            return Outcome(candidates: r.candidates,
                           timings: .init(decode_ms: ms(r.timings.decode), vision_ms: ms(r.timings.vision), text_ms: ms(r.timings.text)))
        case .daemon(let client):
            let r = try await client.caption(image: image, prompt: arguments.prompt, options: arguments.wireOptions,
                                             applyEXIFOrientation: !arguments.noExif, timeout: timeout)
            let t = r.timings
            let candidates = r.candidates.map { c -> CaptionCandidate in
                let ids: [Int32] = c.tokenIDs.map { Int32(truncatingIfNeeded: $0) }
                return CaptionCandidate(text: c.text, tokenIDs: ids, score: Float(c.score), finishReason: c.finishReason == .eos ? .eos : .length)
            }
            func ms(_ us: UInt64) -> Double { Double(us) / 1000 }
            let timings = CaptionOutput.Timings(decode_ms: ms(t.imageDecodeMicroseconds), vision_ms: ms(t.visionMicroseconds),
                                                text_ms: ms(t.textMicroseconds), queue_ms: ms(t.queueWaitMicroseconds))
            return Outcome(candidates: candidates, timings: timings)
        }
    }

    private func ms(_ seconds: Double) -> Double { (seconds * 1e5).rounded() / 100 }
}
