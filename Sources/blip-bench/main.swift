import BLIPEngine
import CFMAProbe
import CPUFeatures
import Foundation

// blip-bench --model DIR --image FILE [--runs N] [--tokens N] [--load-only] [--precision fp32|bf16|int8]
// Prints one JSON object of stage timings (seconds), peak RSS and machine probes on stdout;
// scripts/bench/run.sh runs it beside scripts/bench/pytorch_reference.py and prints the comparison.

if let problem = CPUFeatures.engineProblem() {
    FileHandle.standardError.write(Data("blip-bench: \(problem)\n".utf8))
    exit(1)
}

// The same environment as the daemon's for a reduced precision (OPENBLAS_CORETYPE, OMP_WAIT_POLICY):
// the libraries read it only when they load. fp32 runs are not changed by it.
if let failure = BLASRuntime.reexecIfNeeded(for: .int8) { FileHandle.standardError.write(Data("blip-bench: \(failure)\n".utf8)) }

func option(_ name: String) -> String? {
    let args = CommandLine.arguments
    guard let i = args.firstIndex(of: name), i + 1 < args.count else { return nil }
    return args[i + 1]
}

do {
    if CommandLine.arguments.contains("--gemm-shapes") {
        let shapes = MachineProbe.visionShapes(runs: 9)
        print(shapes.sorted { $0.key < $1.key }.map { "\($0.key): \(Int($0.value)) GFLOP/s" }.joined(separator: "\n"))
        exit(0)
    }
    guard let modelPath = option("--model") else {
        throw BenchError.usage("usage: blip-bench --model DIR --image FILE [--runs N] [--tokens N] [--load-only] [--only STAGES] [--no-probe] [--precision fp32|bf16|int8] | --model DIR --precision-report IMAGES_DIR [--runs N] [--tokens N] | --model DIR --image FILE --loop [--rounds N] [--precision P] | --model DIR --vision-gemm [--runs N] [--rounds N]")
    }
    let folder = ModelFolder(url: URL(fileURLWithPath: modelPath))
    if CommandLine.arguments.contains("--vision-gemm") {
        // --vision-gemm: the vision encoder's products against the FMA peak: per-shape sgemm rates and
        // the whole encoder; Markdown tables on stderr, JSON on stdout.
        guard blip_fma_available() != 0 else { throw BenchError.usage("--vision-gemm: the FMA probe needs AVX2 and FMA, which this CPU lacks") }
        let runs = Int(option("--runs") ?? "3") ?? 3
        let (table, values) = try GEMMBenchmark(runs: runs).run(folder: folder, rounds: Int(option("--rounds") ?? "3") ?? 3)
        FileHandle.standardError.write(Data((table + "\n").utf8))
        var json: [String: Any] = values
        json["cpu"] = ProcessInfoLinux.cpuModel()
        json["threads"] = BLASRuntime.threads
        let data = try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
        exit(0)
    }
    if let directory = option("--precision-report") {
        // --precision-report DIR: every precision against fp32 on every .jpg/.png in DIR (PrecisionReport).
        let images = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
            .filter { $0.hasSuffix(".jpg") || $0.hasSuffix(".png") }
            .map { URL(fileURLWithPath: directory).appendingPathComponent($0) }
        guard !images.isEmpty else { throw BenchError.usage("--precision-report: no .jpg or .png file in \(directory)") }
        var json = try PrecisionReport(folder: folder, images: images, runs: Int(option("--runs") ?? "3") ?? 3,
                                       newTokens: Int(option("--tokens") ?? "20") ?? 20).run()
        json["cpu"] = ProcessInfoLinux.cpuModel()
        json["threads"] = BLASRuntime.threads
        json["images"] = images.count
        let data = try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
        exit(0)
    }
    let precisionName = option("--precision") ?? option("--weights") ?? "fp32"
    guard let precision = Precision(rawValue: precisionName) else {
        throw BenchError.usage("--precision must be one of \(Precision.names), got \(precisionName)")
    }
    if CommandLine.arguments.contains("--loop") {
        // --loop: the engine loop's figures (LoopBenchmark), one JSON object.
        guard let imagePath = option("--image") else { throw BenchError.usage("--image FILE is required") }
        let image = try [UInt8](Data(contentsOf: URL(fileURLWithPath: imagePath)))
        var bench = LoopBenchmark(folder: folder, image: image, precision: precision)
        bench.rounds = Int(option("--rounds") ?? "1") ?? 1
        var json: [String: Any] = try bench.run()
        json["cpu"] = ProcessInfoLinux.cpuModel()
        json["threads"] = BLASRuntime.threads
        let data = try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
        exit(0)
    }
    let captioner = try Captioner(folder: folder, precision: precision)
    var result: [String: Double] = ["ready_s": ProcessInfoLinux.secondsSinceStart()]
    if !CommandLine.arguments.contains("--load-only") {
        guard let imagePath = option("--image") else { throw BenchError.usage("--image FILE is required") }
        let image = try [UInt8](Data(contentsOf: URL(fileURLWithPath: imagePath)))
        let runs = Int(option("--runs") ?? "3") ?? 3
        let bench = EngineBenchmark(captioner: captioner, image: image, runs: runs,
                                    newTokens: Int(option("--tokens") ?? "20") ?? 20,
                                    only: option("--only").map { Set($0.split(separator: ",").map(String.init)) })
        result.merge(try bench.run()) { $1 }
        if !CommandLine.arguments.contains("--no-probe") {
            result["sgemm_gflops"] = MachineProbe.sgemmGFLOPs(runs: max(runs, 5))
            result["bandwidth_gbs"] = MachineProbe.readBandwidthGBs(runs: max(runs, 5))
            if blip_fma_available() != 0 { result["fma_peak_gflops"] = GEMMBenchmark.fmaPeak(threads: BLASRuntime.threads, runs: max(runs, 5)) }
        }
    } else {
        result["peak_rss_bytes"] = Double(ProcessInfoLinux.peakRSSBytes())
    }
    var json: [String: Any] = result
    json["cpu"] = ProcessInfoLinux.cpuModel()
    json["openblas_core"] = BLASRuntime.coreName
    json["threads"] = BLASRuntime.threads
    let data = try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])
    print(String(decoding: data, as: UTF8.self))
} catch {
    FileHandle.standardError.write(Data("blip-bench: \(error)\n".utf8))
    exit(1)
}
