import CKernels
import Foundation
import Testing
@testable import BLIPEngine

/// The packed-weight GEMM of the vision encoder (`CKernels`, ``VisionGEMM/packed``): the kernel
/// against a float64 reference over shapes that are not multiples of its blocking, its results
/// independent of how the columns are split between threads, and the fixture models' features and
/// captions through it.
@Suite("Packed GEMM", .enabled(if: VisionGEMM.packedAvailable, "needs AVX2 and FMA"))
struct PackedGEMMTests {
    /// (rows M, outputs N, inputs K). The kernel blocks 6 rows × 16 columns, K in 256s and rows in
    /// blocks of at most 516: odd sizes on every side, 1 row, and the vision encoder's 577 rows.
    static let shapes: [(Int, Int, Int)] = [
        (1, 1, 1), (1, 17, 5), (1, 64, 1024), (5, 16, 256), (7, 33, 300), (13, 100, 513),
        (577, 40, 300), (577, 24, 768), (520, 19, 257), (64, 1030, 64),
    ]

    /// Deterministic values in [-1, 1).
    static func values(_ count: Int, seed: UInt64) -> [Float] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        return (0..<count).map { _ in
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return Float(state >> 40) / Float(1 << 23) - 1
        }
    }

    /// A weight-only `Linear` over arrays the caller keeps alive, packed.
    static func packed(_ w: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>?, n: Int, k: Int) -> Linear {
        var linear = Linear(weight: w.baseAddress!, bias: b?.baseAddress, inFeatures: k, outFeatures: n)
        linear.packedWeight = PackedWeight(packing: w.baseAddress!, outFeatures: n, inFeatures: k)!
        return linear
    }

    /// |c − exact| ≤ tolerance · (Σ|a·w| + |bias| + |c₀|) for every element, with the exact value in
    /// float64. The tolerance is the rounding bound of the kernel's order of operations: a chain of
    /// at most 256 fused multiply-adds per K block, then one addition per block and for bias and
    /// c₀, each within half an ulp: γ(256 + K/256 + 2) ≈ (258 + K/256) · 2⁻²⁴.
    @Test(arguments: shapes)
    func kernelMatchesFloat64Reference(m: Int, n: Int, k: Int) throws {
        let a = Self.values(m * k, seed: 1), w = Self.values(n * k, seed: 2), bias = Self.values(n, seed: 3)
        let start = Self.values(m * n, seed: 4)
        // The exact products and their absolute sums, once for the four variants.
        var dots = [Double](repeating: 0, count: m * n), sums = dots
        a.withUnsafeBufferPointer { a in
            w.withUnsafeBufferPointer { w in
                for i in 0..<m {
                    for j in 0..<n {
                        var exact = 0.0, scale = 0.0
                        for p in 0..<k {
                            let product = Double(a[i * k + p]) * Double(w[j * k + p])
                            exact += product
                            scale += abs(product)
                        }
                        dots[i * n + j] = exact
                        sums[i * n + j] = scale
                    }
                }
            }
        }
        for (withBias, accumulate) in [(false, false), (true, false), (false, true), (true, true)] {
            var c = start
            w.withUnsafeBufferPointer { wp in
                bias.withUnsafeBufferPointer { bp in
                    let linear = Self.packed(wp, withBias ? bp : nil, n: n, k: k)
                    a.withUnsafeBufferPointer { ap in
                        c.withUnsafeMutableBufferPointer { cp in
                            linear.apply(ap.baseAddress!, rows: m, xStride: k, into: cp.baseAddress!, yStride: n, accumulate: accumulate)
                        }
                    }
                }
            }
            let tolerance = Double(258 + k / 256) * 0x1p-24
            var worst = 0.0, worstIndex = 0
            for i in 0..<m {
                for j in 0..<n {
                    var exact = dots[i * n + j], scale = sums[i * n + j]
                    if withBias { exact += Double(bias[j]); scale += abs(Double(bias[j])) }
                    if accumulate { exact += Double(start[i * n + j]); scale += abs(Double(start[i * n + j])) }
                    let error = abs(Double(c[i * n + j]) - exact) / max(scale, .leastNormalMagnitude)
                    if error > worst { worst = error; worstIndex = i * n + j }
                }
            }
            print("measured: packed GEMM \(m)×\(n)×\(k) bias \(withBias) accumulate \(accumulate): worst error \(worst) of Σ|a·w| at (\(worstIndex / n), \(worstIndex % n)), tolerance \(tolerance)")
            #expect(worst <= tolerance, "\(m)×\(n)×\(k) bias \(withBias) accumulate \(accumulate): worst \(worst) at element \(worstIndex)")
        }
    }

    /// The same bits whatever the number of workers the columns are split between (encode lanes run
    /// one thread each, a caption alone two), and the fused GELU is `geluInPlace` on the product.
    @Test(arguments: [(577, 200, 300), (33, 1024, 96), (1, 48, 40)])
    func resultsDoNotDependOnTheSplit(m: Int, n: Int, k: Int) throws {
        let a = Self.values(m * k, seed: 5), w = Self.values(n * k, seed: 6), bias = Self.values(n, seed: 7)
        func run(workers: Int, epilogue: Linear.Epilogue) -> [Float] {
            var c = Self.values(m * n, seed: 8)
            w.withUnsafeBufferPointer { wp in
                bias.withUnsafeBufferPointer { bp in
                    let linear = Self.packed(wp, bp, n: n, k: k)
                    a.withUnsafeBufferPointer { ap in
                        c.withUnsafeMutableBufferPointer { cp in
                            Parallel.withWorkers(workers) {
                                linear.apply(ap.baseAddress!, rows: m, xStride: k, into: cp.baseAddress!, yStride: n,
                                             accumulate: true, then: epilogue)
                            }
                        }
                    }
                }
            }
            return c
        }
        let alone = run(workers: 1, epilogue: .none)
        for workers in [2, 3, 5] {
            #expect(run(workers: workers, epilogue: .none) == alone, "\(m)×\(n)×\(k) split \(workers) ways differs")
        }
        var geluAfter = alone
        geluAfter.withUnsafeMutableBufferPointer { geluInPlace($0.baseAddress!, count: $0.count) }
        #expect(run(workers: 2, epilogue: .gelu) == geluAfter, "fused GELU differs from geluInPlace on the product")
    }

    /// The fixture models load with packed vision weights.
    static let models: [String: BlipModel] = Dictionary(uniqueKeysWithValues: Fixtures.modelNames.compactMap { name in
        (try? BlipModel(folder: Fixtures.modelFolder(name), visionGEMM: .packed)).map { (name, $0) }
    })

    /// transformers' vision features within the parity suite's tolerance, through the packed kernel;
    /// and the same bits on one thread as on every core.
    @Test(arguments: ModelNumericsTests.cases)
    func visionFeaturesMatchTransformers(model name: String, image: String) throws {
        let model = try #require(Self.models[name])
        #expect(model.vision.gemm == .packed)
        let golden = try Fixtures.golden(model: name, image: image)
        let pixels = try golden.floats("pixel_values")
        let expected = try golden.floats("vision_features")
        let vc = model.config.vision
        func encode(workers: Int) -> [Float] {
            var features = [Float](repeating: .nan, count: expected.count)
            pixels.withUnsafeBufferPointer { p in
                features.withUnsafeMutableBufferPointer { f in
                    Parallel.withWorkers(workers) {
                        model.encodeImage(pixels: p.baseAddress!, into: f.baseAddress!, state: VisionState(config: vc))
                    }
                }
            }
            return features
        }
        let features = encode(workers: Parallel.available)
        let d = Difference(actual: features, expected: expected)
        #expect(d.relative < ModelNumericsTests.featureTolerance, "\(name)/\(image): \(d)")
        print("measured: vision_features (packed GEMM) \(name)/\(image) \(d)")
        #expect(encode(workers: 1) == features, "\(name)/\(image): one thread differs from \(Parallel.available)")
    }

    static let captioners: [String: Captioner] = Dictionary(uniqueKeysWithValues: Fixtures.modelNames.compactMap { name in
        (try? Captioner(folder: Fixtures.modelFolder(name), visionGEMM: .packed)).map { (name, $0) }
    })

    /// transformers' captions, token for token, with the packed kernel in the vision encoder.
    @Test(arguments: CaptionReferenceTests.cases)
    func captionMatchesTransformers(_ c: CaptionReferenceTests.Case) throws {
        let captioner = try #require(Self.captioners[c.model])
        let result = try captioner.caption(image: try Fixtures.imageBytes(c.image), parameters: c.parameters)
        #expect(result.candidates.map(\.tokenIDs) == c.sequences, "\(c.testDescription)")
        #expect(result.candidates.map(\.text) == c.texts, "\(c.testDescription)")
    }

    /// Packing gives back the mapped float32 pages: the layers read only the packed copy.
    @Test func packedLayersReadOnlyThePackedCopy() throws {
        let model = try #require(Self.models["tiny-d"] ?? Self.models.values.first)
        for layer in model.vision.layers {
            for linear in [layer.attention.qkv, layer.attention.projection, layer.fc1, layer.fc2] {
                #expect(linear.packedWeight != nil)
            }
        }
        #expect(model.vision.embeddings.patchProjection.packedWeight != nil)
    }

    @Test func environmentChoosesTheKernel() {
        #expect(VisionGEMM.fromEnvironment(["BLIP_VISION_GEMM": "packed"]) == .packed)
        #expect(VisionGEMM.fromEnvironment(["BLIP_VISION_GEMM": "blas"]) == .blas)
        #expect(VisionGEMM.fromEnvironment([:]) == VisionGEMM.standard)
        #expect(VisionGEMM.fromEnvironment(["BLIP_VISION_GEMM": "fast"]) == VisionGEMM.standard)
    }
}
