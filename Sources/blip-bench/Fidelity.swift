import BLIPEngine
import Foundation

/// bfloat16 decoder weights against float32 on the full-size model: for each image, the vision
/// features once (float32 in both modes), then the first step's logits and greedy and beam-3
/// captions (`newTokens` new tokens) with each decoder. Prints the worst relative logit error and
/// how many captions are token-identical.
struct Fidelity {
    let folder: ModelFolder
    let images: [URL]
    let newTokens: Int

    func run() throws -> [String: Double] {
        let full = try Captioner(folder: folder)
        let reduced = try BlipModel(folder: folder, decoderWeights: .bfloat16)
        let m = full.model, vc = m.config.vision, p = m.preprocessor
        let normalizer = ImageNormalizer(imageSize: p.imageSize, mean: p.imageMean, std: p.imageStd, rescaleFactor: p.rescaleFactor)
        let state = VisionState(config: vc)
        let pixels = UnsafeMutableBufferPointer<Float>.allocate(capacity: 3 * p.imageSize * p.imageSize)
        let features = UnsafeMutablePointer<Float>.allocate(capacity: vc.tokenCount * vc.hiddenSize)
        defer { pixels.deallocate(); features.deallocate() }
        let generator = Generator(eosTokenID: m.config.text.sepTokenID, padTokenID: m.config.text.padTokenID)
        let bos = m.config.text.bosTokenID
        var worst: Float = 0, identical = 0, total = 0
        for url in images {
            let rgb = try ImageDecoder.decode([UInt8](try Data(contentsOf: url)))
            normalizer.pixelValues(from: rgb, into: pixels)
            m.encodeImage(pixels: UnsafePointer(pixels.baseAddress!), into: features, state: state)
            let a = m.makeSession(features: features, maxRows: 3, maxLength: 1 + newTokens)
            let b = reduced.makeSession(features: features, maxRows: 3, maxLength: 1 + newTokens)
            let la = try a.step([bos]), lb = try b.step([bos])
            var scale: Float = 0, diff: Float = 0
            for i in 0..<la.count { scale = max(scale, abs(la[i])); diff = max(diff, abs(la[i] - lb[i])) }
            worst = max(worst, diff / scale)
            for beams in [1, 3] {
                var parameters = GenerationParameters()
                parameters.numBeams = beams
                parameters.maxNewTokens = newTokens
                let x = try generator.generate(prefix: [bos], parameters: parameters, badWordIDs: [],
                                               model: m.makeSession(features: features, maxRows: beams, maxLength: 1 + newTokens), checkpoint: {})
                let y = try generator.generate(prefix: [bos], parameters: parameters, badWordIDs: [],
                                               model: reduced.makeSession(features: features, maxRows: beams, maxLength: 1 + newTokens), checkpoint: {})
                total += 1
                if x.first?.tokenIDs == y.first?.tokenIDs { identical += 1 }
            }
        }
        return ["bf16_worst_logit_error": Double(worst), "bf16_identical_captions": Double(identical), "bf16_captions": Double(total)]
    }
}
