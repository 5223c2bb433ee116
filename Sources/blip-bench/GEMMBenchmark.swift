import BLIPEngine
import CKernels
import COpenBLAS
import Foundation

/// The vision encoder's products both ways (issue 16): the FMA peak, the packed-weight kernel and
/// OpenBLAS `sgemm` on the four linear shapes, one thread and every core (split as the engine
/// splits: output columns, one single-threaded call per core), and the whole encoder with each
/// `VisionGEMM`, alternating, in the same process.
struct GEMMBenchmark {
    let runs: Int

    /// GFLOP/s of 12 independent register-only FMA chains (`blip_fma_probe`) on `threads` threads,
    /// by the clock on the wall.
    static func fmaPeak(threads: Int, runs: Int) -> Double { fmaPeakRates(threads: threads, runs: runs).wall }

    /// The probe's GFLOP/s by the wall clock and by CPU time (the rate while the threads held a core:
    /// what the cores can do, whatever else the machine runs).
    static func fmaPeakRates(threads: Int, runs: Int) -> (wall: Double, cpu: Double) {
        let iterations = 50_000_000
        let flops = Double(threads) * Double(iterations) * 192
        return rates(flops: flops, threads: threads, runs: runs) {
            DispatchQueue.concurrentPerform(iterations: threads) { _ in _ = blip_fma_probe(iterations) }
        }
    }

    /// Median GFLOP/s of `body` by the wall clock and by this process's CPU time per thread.
    static func rates(flops: Double, threads: Int, runs: Int, _ body: () -> Void) -> (wall: Double, cpu: Double) {
        var wall: [Double] = [], cpu: [Double] = []
        for run in 0...runs {
            let c0 = processCPUSeconds()
            let t = Stopwatch.time(body)
            let c = processCPUSeconds() - c0
            if run > 0 { wall.append(t); cpu.append(c / Double(threads)) }  // the first call warms caches
        }
        return (flops / Stats.median(wall) / 1e9, flops / Stats.median(cpu) / 1e9)
    }

    /// (name, M, N, K) of BLIP-large's vision linear layers: x (577, in) · W (out, in)ᵀ.
    static func shapes(_ c: BlipVisionConfig) -> [(String, Int, Int, Int)] {
        let t = c.tokenCount, h = c.hiddenSize, m = c.intermediateSize
        return [("qkv", t, 3 * h, h), ("proj", t, h, h), ("fc1", t, m, h), ("fc2", t, h, m)]
    }

    /// Median GFLOP/s of each shape: packed kernel and sgemm on 1 and `threads` threads.
    func shapeRates(_ shapes: [(String, Int, Int, Int)], threads: Int) -> [(String, [String: Double])] {
        var out: [(String, [String: Double])] = []
        openblas_set_num_threads(1)
        for (name, m, n, k) in shapes {
            let a = UnsafeMutablePointer<Float>.allocate(capacity: m * k)
            let w = UnsafeMutablePointer<Float>.allocate(capacity: n * k)
            let c = UnsafeMutablePointer<Float>.allocate(capacity: m * n)
            let packed = UnsafeMutablePointer<Float>.allocate(capacity: blip_gemm_packed_count(n, k))
            defer { a.deallocate(); w.deallocate(); c.deallocate(); packed.deallocate() }
            for i in 0..<(m * k) { a[i] = Float(i % 7) * 0.01 - 0.03 }
            for i in 0..<(n * k) { w[i] = Float(i % 5) * 0.01 - 0.02 }
            c.initialize(repeating: 0, count: m * n)
            blip_gemm_pack(w, n, k, 0, (n + 15) / 16, packed)
            let (aa, wa, ca, pa) = (UInt(bitPattern: a), UInt(bitPattern: w), UInt(bitPattern: c), UInt(bitPattern: packed))
            func split(_ workers: Int, _ body: @escaping @Sendable (Int, Int) -> Void) {
                // Whole 16-column panels per worker, as Parallel.forChunks gives the engine.
                let panels = (n + 15) / 16
                DispatchQueue.concurrentPerform(iterations: workers) { wkr in
                    let p0 = wkr * panels / workers, p1 = (wkr + 1) * panels / workers
                    body(p0 * 16, min(n, p1 * 16))
                }
            }
            let flops = 2.0 * Double(m * n * k)
            func rate(_ workers: Int, _ body: @escaping @Sendable (Int, Int) -> Void) -> (wall: Double, cpu: Double) {
                Self.rates(flops: flops, threads: workers, runs: runs) { split(workers, body) }
            }
            let packedProduct: @Sendable (Int, Int) -> Void = { c0, c1 in
                blip_gemm_packed(m, n, k, UnsafePointer(bitPattern: aa), k, UnsafePointer(bitPattern: pa), c0, c1,
                                 nil, 0, UnsafeMutablePointer(bitPattern: ca), n)
            }
            let blasProduct: @Sendable (Int, Int) -> Void = { c0, c1 in
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(c1 - c0), Int32(k), 1,
                            UnsafePointer(bitPattern: aa), Int32(k), UnsafePointer<Float>(bitPattern: wa)! + c0 * k, Int32(k),
                            0, UnsafeMutablePointer<Float>(bitPattern: ca)! + c0, Int32(n))
            }
            var r: [String: Double] = [:]
            // Alternate the two so that both see the same moments of a shared machine.
            var samples: [String: [Double]] = [:]
            for _ in 0..<3 {
                for (key, workers, body) in [("packed_1", 1, packedProduct), ("sgemm_1", 1, blasProduct),
                                             ("packed_n", threads, packedProduct), ("sgemm_n", threads, blasProduct)] {
                    let x = rate(workers, body)
                    samples[key + "_wall", default: []].append(x.wall)
                    samples[key, default: []].append(x.cpu)
                }
            }
            for (key, xs) in samples { r[key] = Stats.median(xs) }
            out.append((name, r))
        }
        return out
    }

    /// Seconds of one vision encode (median of `runs` after a warm-up) with each ``VisionGEMM``,
    /// the models loaded one after the other, `rounds` times alternating; and each load's time.
    func encoderTimes(folder: ModelFolder, rounds: Int) throws -> [VisionGEMM: (encode: [Double], cpu: [Double], load: [Double])] {
        var out: [VisionGEMM: (encode: [Double], cpu: [Double], load: [Double])] = [:]
        for _ in 0..<rounds {
            for gemm in [VisionGEMM.blas, .packed] where gemm.runnable == gemm {
                var model: BlipModel?
                let load = try Stopwatch.time { model = try BlipModel(folder: folder, visionGEMM: gemm) }
                let vc = model!.config.vision, size = model!.preprocessor.imageSize
                let pixels = UnsafeMutablePointer<Float>.allocate(capacity: 3 * size * size)
                let features = UnsafeMutablePointer<Float>.allocate(capacity: vc.tokenCount * vc.hiddenSize)
                defer { pixels.deallocate(); features.deallocate() }
                for i in 0..<(3 * size * size) { pixels[i] = Float(i % 255) / 128 - 1 }
                let state = VisionState(config: vc)
                model!.encodeImage(pixels: pixels, into: features, state: state)  // warm-up: pages, buffers
                var times: [Double] = [], cpu: [Double] = []
                for _ in 0..<runs {
                    let cpu0 = Self.processCPUSeconds()
                    times.append(Stopwatch.time { model!.encodeImage(pixels: pixels, into: features, state: state) })
                    cpu.append(Self.processCPUSeconds() - cpu0)
                }
                out[gemm, default: ([], [], [])].encode.append(Stats.median(times))
                out[gemm, default: ([], [], [])].cpu.append(Stats.median(cpu))
                out[gemm, default: ([], [], [])].load.append(load)
                model = nil
            }
        }
        return out
    }

    /// CPU seconds this process has run (all threads): on a shared machine, the work an encode
    /// costs without the time other processes held the cores.
    static func processCPUSeconds() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }

    /// The comparison as Markdown tables, and the figures as JSON-ready values.
    func run(folder: ModelFolder, rounds: Int) throws -> (table: String, values: [String: Double]) {
        let threads = BLASRuntime.threads
        let config = try BlipConfig.load(from: folder.config).vision
        var values: [String: Double] = [:]
        let rates1 = Self.fmaPeakRates(threads: 1, runs: runs), ratesN = Self.fmaPeakRates(threads: threads, runs: runs)
        let peak1 = rates1.cpu, peakN = ratesN.cpu
        values["fma_peak_1_gflops"] = peak1
        values["fma_peak_n_gflops"] = peakN
        values["fma_peak_1_wall_gflops"] = rates1.wall
        values["fma_peak_n_wall_gflops"] = ratesN.wall
        var lines: [String] = []
        let load = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
        lines.append("\(ProcessInfoLinux.cpuModel()), \(threads) threads, OpenBLAS core \(BLASRuntime.coreName); load average at start \(load)")
        lines.append("FMA peak (12 register-only AVX2 FMA chains): \(f1(peak1)) GFLOP/s on 1 thread, \(f1(peakN)) on \(threads) (by CPU time; by the wall clock \(f1(rates1.wall)) and \(f1(ratesN.wall)))")
        lines.append("")
        lines.append("| shape (M×K · (N×K)ᵀ) | packed, 1 thread | sgemm, 1 thread | packed ÷ sgemm | packed, \(threads) threads | sgemm, \(threads) threads | packed ÷ sgemm | packed ÷ peak (\(threads) threads) |")
        lines.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for (name, r) in shapeRates(Self.shapes(config), threads: threads) {
            let (m, n, k) = Self.shapes(config).first { $0.0 == name }.map { ($0.1, $0.2, $0.3) }!
            for (key, v) in r { values["gemm_\(name)_\(key)_gflops"] = v }
            lines.append("| \(name) \(m)×\(k) · (\(n)×\(k))ᵀ | \(f1(r["packed_1"]!)) | \(f1(r["sgemm_1"]!)) | \(f2(r["packed_1"]! / r["sgemm_1"]!))× | \(f1(r["packed_n"]!)) | \(f1(r["sgemm_n"]!)) | \(f2(r["packed_n"]! / r["sgemm_n"]!))× | \(pct(r["packed_n"]! / peakN)) |")
        }
        lines.append("(GFLOP/s by CPU time per thread — the rate while a thread held a core — medians of 3 alternations × \(runs) calls; peak = the FMA probe above)")
        lines.append("")
        let times = try encoderTimes(folder: folder, rounds: rounds)
        let encoderFlops = Self.encoderGFLOP(config)
        lines.append("| vision encoder (\(f1(encoderFlops)) GFLOP), \(threads) threads | seconds (median of \(rounds) rounds × \(runs) encodes) | GFLOP/s | CPU seconds per encode | CPU seconds ÷ threads ÷ FMA-peak time (\(f2(encoderFlops / peakN)) s) | model load |")
        lines.append("| --- | --- | --- | --- | --- | --- |")
        for gemm in [VisionGEMM.blas, .packed] {
            guard let t = times[gemm] else { lines.append("| \(gemm.rawValue) | not runnable on this CPU | | | |"); continue }
            let s = Stats.median(t.encode), l = Stats.median(t.load), c = Stats.median(t.cpu)
            values["vision_\(gemm.rawValue)_s"] = s
            values["vision_\(gemm.rawValue)_cpu_s"] = c
            values["load_\(gemm.rawValue)_s"] = l
            lines.append("| BLIP_VISION_GEMM=\(gemm.rawValue) | \(f3(s)) s (\(t.encode.map(f3).joined(separator: ", "))) | \(f1(encoderFlops / s)) | \(f3(c)) s | \(f2(c / Double(threads) / (encoderFlops / peakN)))× | \(f3(l)) s |")
        }
        if let b = values["vision_blas_s"], let p = values["vision_packed_s"] {
            values["vision_blas_over_packed"] = b / p
            lines.append("by the wall clock packed is \(f2(b / p))× as fast as blas on the whole encoder (\(pct(1 - p / b)) less time)")
            if let bc = values["vision_blas_cpu_s"], let pc = values["vision_packed_cpu_s"] {
                values["vision_blas_over_packed_cpu"] = bc / pc
                lines.append("in CPU seconds: \(f2(bc / pc))× (\(pct(1 - pc / bc)) less)")
            }
        }
        let loadEnd = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
        lines.append("load average at end \(loadEnd)")
        return (lines.joined(separator: "\n"), values)
    }

    /// Multiply-adds × 2 of one encode: patch embedding, the layers' four linear products, and
    /// attention's two products per head.
    static func encoderGFLOP(_ c: BlipVisionConfig) -> Double {
        let t = Double(c.tokenCount), h = Double(c.hiddenSize), m = Double(c.intermediateSize)
        let patches = t - 1, patchIn = Double(3 * c.patchSize * c.patchSize)
        let perLayer = 2 * t * h * (3 * h) + 2 * t * h * h + 2 * 2 * t * h * m + 2 * 2 * t * t * h
        return (2 * patches * patchIn * h + Double(c.numHiddenLayers) * perLayer) / 1e9
    }
}

private func f1(_ x: Double) -> String { String(format: "%.1f", x) }
private func f2(_ x: Double) -> String { String(format: "%.2f", x) }
private func f3(_ x: Double) -> String { String(format: "%.3f", x) }
private func pct(_ x: Double) -> String { String(format: "%.0f%%", 100 * x) }
