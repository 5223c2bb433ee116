import BLIPEngine
import CFMAProbe
import COpenBLAS
import Foundation

/// The vision encoder's products against what the cores can do: the FMA peak, OpenBLAS `sgemm` on
/// the four linear shapes, one thread and every core (split as the engine splits: output columns,
/// one single-threaded call per core), and the whole encoder, in the same process.
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

    /// Median GFLOP/s of each shape's sgemm: one image on 1 thread (`sgemm_1`) and on `threads`
    /// (`sgemm_n`, the output columns split as the engine splits them); and `threads` images at once,
    /// either as one product of `threads` × M rows with the columns split (`batched_n`) or one image
    /// per thread, all columns (`lanes_n`, the engine's encode lanes).
    func shapeRates(_ shapes: [(String, Int, Int, Int)], threads: Int) -> [(String, [String: Double])] {
        var out: [(String, [String: Double])] = []
        openblas_set_num_threads(1)
        for (name, m, n, k) in shapes {
            let images = threads  // one image per thread in the batched and lanes variants
            let a = UnsafeMutablePointer<Float>.allocate(capacity: images * m * k)
            let w = UnsafeMutablePointer<Float>.allocate(capacity: n * k)
            let c = UnsafeMutablePointer<Float>.allocate(capacity: images * m * n)
            defer { a.deallocate(); w.deallocate(); c.deallocate() }
            for i in 0..<(images * m * k) { a[i] = Float(i % 7) * 0.01 - 0.03 }
            for i in 0..<(n * k) { w[i] = Float(i % 5) * 0.01 - 0.02 }
            c.initialize(repeating: 0, count: images * m * n)
            let (aa, wa, ca) = (UInt(bitPattern: a), UInt(bitPattern: w), UInt(bitPattern: c))
            // Rows [r0, r1) times the columns [c0, c1) of W, one single-threaded call.
            let product: @Sendable (Int, Int, Int, Int) -> Void = { r0, r1, c0, c1 in
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(r1 - r0), Int32(c1 - c0), Int32(k), 1,
                            UnsafePointer<Float>(bitPattern: aa)! + r0 * k, Int32(k), UnsafePointer<Float>(bitPattern: wa)! + c0 * k, Int32(k),
                            0, UnsafeMutablePointer<Float>(bitPattern: ca)! + r0 * n + c0, Int32(n))
            }
            // Whole 16-column slices per worker, as Parallel.forChunks gives the engine.
            let panels = (n + 15) / 16
            let columns: @Sendable (Int, Int) -> (Int, Int) = { worker, workers in
                (worker * panels / workers * 16, min(n, (worker + 1) * panels / workers * 16))
            }
            let one = 2.0 * Double(m * n * k)
            let variants: [(String, Int, Double, @Sendable (Int) -> Void)] = [
                ("sgemm_1", 1, one, { _ in product(0, m, 0, n) }),
                ("sgemm_n", threads, one, { wkr in let (c0, c1) = columns(wkr, threads); product(0, m, c0, c1) }),
                ("batched_n", threads, one * Double(images), { wkr in let (c0, c1) = columns(wkr, threads); product(0, images * m, c0, c1) }),
                ("lanes_n", threads, one * Double(images), { wkr in product(wkr * m, (wkr + 1) * m, 0, n) }),
            ]
            var samples: [String: [Double]] = [:]
            // Alternated, so that every variant sees the same moments of a shared machine.
            for _ in 0..<3 {
                for (key, workers, flops, body) in variants {
                    let x = Self.rates(flops: flops, threads: workers, runs: runs) {
                        DispatchQueue.concurrentPerform(iterations: workers) { body($0) }
                    }
                    samples[key + "_wall", default: []].append(x.wall)
                    samples[key, default: []].append(x.cpu)
                }
            }
            out.append((name, samples.mapValues { Stats.median($0) }))
        }
        return out
    }

    /// Seconds of one vision encode (median of `runs` after a warm-up), the model loaded afresh
    /// `rounds` times; and each load's time.
    func encoderTimes(folder: ModelFolder, rounds: Int) throws -> (encode: [Double], cpu: [Double], load: [Double]) {
        var out: (encode: [Double], cpu: [Double], load: [Double]) = ([], [], [])
        for _ in 0..<rounds {
            var model: BlipModel?
            let load = try Stopwatch.time { model = try BlipModel(folder: folder) }
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
            out.encode.append(Stats.median(times))
            out.cpu.append(Stats.median(cpu))
            out.load.append(load)
            model = nil
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
        lines.append("| shape (M×K · (N×K)ᵀ) | sgemm, 1 thread | ÷ peak (1 thread) | sgemm, \(threads) threads | ÷ peak (\(threads) threads) | \(threads) images batched (M × \(threads)) | \(threads) images in lanes | batched ÷ lanes |")
        lines.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for (name, r) in shapeRates(Self.shapes(config), threads: threads) {
            let (m, n, k) = Self.shapes(config).first { $0.0 == name }.map { ($0.1, $0.2, $0.3) }!
            for (key, v) in r { values["gemm_\(name)_\(key)_gflops"] = v }
            lines.append("| \(name) \(m)×\(k) · (\(n)×\(k))ᵀ | \(f1(r["sgemm_1"]!)) | \(pct(r["sgemm_1"]! / peak1)) | \(f1(r["sgemm_n"]!)) | \(pct(r["sgemm_n"]! / peakN)) | \(f1(r["batched_n"]!)) | \(f1(r["lanes_n"]!)) | \(f2(r["batched_n"]! / r["lanes_n"]!))× |")
        }
        lines.append("(GFLOP/s by CPU time per thread — the rate while a thread held a core — medians of 3 alternations × \(runs) calls; peak = the FMA probe above; batched and lanes: \(threads) images' products at once, by CPU time per thread)")
        lines.append("")
        let encoderFlops = Self.encoderGFLOP(config)
        lines.append("| vision encoder (\(f1(encoderFlops)) GFLOP), \(threads) threads | seconds (median of \(rounds) rounds × \(runs) encodes) | GFLOP/s | CPU seconds per encode | CPU seconds ÷ threads ÷ FMA-peak time (\(f2(encoderFlops / peakN)) s) | model load |")
        lines.append("| --- | --- | --- | --- | --- | --- |")
        let t = try encoderTimes(folder: folder, rounds: rounds)
        let seconds = Stats.median(t.encode), loadSeconds = Stats.median(t.load), cpu = Stats.median(t.cpu)
        values["vision_s"] = seconds
        values["vision_cpu_s"] = cpu
        values["load_s"] = loadSeconds
        lines.append("| OpenBLAS sgemm | \(f3(seconds)) s (\(t.encode.map(f3).joined(separator: ", "))) | \(f1(encoderFlops / seconds)) | \(f3(cpu)) s | \(f2(cpu / Double(threads) / (encoderFlops / peakN)))× | \(f3(loadSeconds)) s |")
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
