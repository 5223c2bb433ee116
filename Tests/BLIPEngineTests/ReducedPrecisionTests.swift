import Foundation
import Testing
@testable import BLIPEngine

/// The bfloat16 decoder-weight mode (`WeightPrecision.bfloat16`): the packing is exact bfloat16
/// rounding, and its fidelity to float32 is measured on every fixture model and image.
@Suite("bfloat16 decoder weights")
struct ReducedPrecisionTests {
    @Test func roundingIsToNearestEven() {
        #expect(BFloat16(1.0).bits == 0x3F80)
        #expect(BFloat16(Float(bitPattern: 0x3F80_8000)).bits == 0x3F80)  // tie → even (down)
        #expect(BFloat16(Float(bitPattern: 0x3F81_8000)).bits == 0x3F82)  // tie → even (up)
        #expect(BFloat16(Float(bitPattern: 0x3F80_8001)).bits == 0x3F81)  // above the tie
        #expect(BFloat16(-2.5).float == -2.5)
        #expect(BFloat16(.infinity).float == .infinity)
        #expect(BFloat16(.nan).float.isNaN)
    }

    @Test func packedLayoutHoldsEveryElement() {
        let n = 8, k = 16
        let weight = (0..<(n * k)).map { Float($0) * 0.25 - 3 }
        let storage = UnsafeMutablePointer<BFloat16>.allocate(capacity: n * k)
        defer { storage.deallocate() }
        weight.withUnsafeBufferPointer { PackedBFloat16Matrix.pack($0.baseAddress!, outFeatures: n, inFeatures: k, into: storage) }
        let m = PackedBFloat16Matrix(values: storage, outFeatures: n, inFeatures: k)
        for o in 0..<n { for i in 0..<k { #expect(m[o, i] == BFloat16(weight[o * k + i]).float) } }
    }

    /// Each product equals the float32 one computed on the rounded weights, for 1…5 rows.
    @Test func productMatchesFloat32OnRoundedWeights() {
        let n = 12, k = 24
        let weight = (0..<(n * k)).map { sin(Float($0)) }
        let rounded = weight.map { BFloat16($0).float }
        let bias = (0..<n).map { Float($0) * 0.1 }
        let x = (0..<(5 * k)).map { cos(Float($0) * 0.7) }
        let storage = UnsafeMutablePointer<BFloat16>.allocate(capacity: n * k)
        defer { storage.deallocate() }
        weight.withUnsafeBufferPointer { PackedBFloat16Matrix.pack($0.baseAddress!, outFeatures: n, inFeatures: k, into: storage) }
        let m = PackedBFloat16Matrix(values: storage, outFeatures: n, inFeatures: k)
        expectDecodeStepProduct(outFeatures: n, inFeatures: k, bias: bias, x: x, weight: { rounded[$0 * k + $1] }) { rows, y in
            skinnyProduct(weight: m, bias: bias, x: x, rows: rows, xStride: k, y: y, yStride: n, accumulate: false)
        }
    }

    /// Fidelity against float32 on every fixture model × image: worst relative error of the first
    /// step's logits, and the share of captions (greedy and beam 3, 12 new tokens) whose tokens are
    /// identical. Printed as `measured:`; the bounds only catch a broken mode.
    @Test(arguments: ["tiny-a", "tiny-b", "tiny-c"])
    func fidelityAgainstFloat32(_ model: String) throws {
        let full = try Captioner(folder: Fixtures.modelFolder(model))
        let reduced = try Captioner(folder: Fixtures.modelFolder(model), precision: .bfloat16)
        let names = try FileManager.default.contentsOfDirectory(atPath: Fixtures.root.appendingPathComponent("images").path)
            .filter { $0.hasSuffix(".jpg") || $0.hasSuffix(".png") }.sorted()
        var worst: Float = 0, identical = 0, total = 0
        let m = full.model, vc = m.config.vision, p = m.preprocessor
        let normalizer = ImageNormalizer(imageSize: p.imageSize, mean: p.imageMean, std: p.imageStd, rescaleFactor: p.rescaleFactor)
        let state = VisionState(config: vc)
        for name in names {
            let bytes = try Fixtures.imageBytes(name)
            // First-step logits from the same features.
            let rgb = try ImageDecoder.decode(bytes)
            let pixels = FloatBuffer(count: 3 * p.imageSize * p.imageSize)
            normalizer.pixelValues(from: rgb, into: UnsafeMutableBufferPointer(start: pixels.pointer, count: pixels.count))
            let features = FloatBuffer(count: vc.tokenCount * vc.hiddenSize)
            m.encodeImage(pixels: pixels.pointer, into: features.pointer, state: state)
            // The logits live in the session's scratch: keep each session alive while they are read.
            let sessionA = m.makeSession(features: features.pointer, maxRows: 1, maxLength: 4)
            let sessionB = reduced.model.makeSession(features: features.pointer, maxRows: 1, maxLength: 4)
            let a = Array(try sessionA.step([m.config.text.bosTokenID]))
            let b = Array(try sessionB.step([m.config.text.bosTokenID]))
            let scale = a.map(abs).max() ?? 1
            worst = max(worst, zip(a, b).map { abs($0 - $1) }.max()! / scale)
            for beams in [1, 3] {
                var parameters = GenerationParameters()
                parameters.numBeams = beams
                parameters.maxNewTokens = 12
                let x = try full.caption(image: bytes, parameters: parameters).candidates[0].tokenIDs
                let y = try reduced.caption(image: bytes, parameters: parameters).candidates[0].tokenIDs
                total += 1
                if x == y { identical += 1 }
            }
        }
        print("measured: bf16 decoder weights, \(model): worst first-step logit error \(worst) (relative to max |logit|); \(identical)/\(total) captions token-identical to float32")
        #expect(worst < 0.05)
        #expect(total == 2 * names.count && identical > 0)
    }
}
