import COpenBLAS
import CPUFeatures
import Foundation

/// What OpenBLAS runs with, and how to make it pick the right kernel.
///
/// Debian 12's OpenBLAS 0.3.21 does not recognise recent Xeons and silently falls back to its generic
/// "Prescott" kernel (~10× slower sgemm). The kernel is chosen when the library loads, from
/// `OPENBLAS_CORETYPE`, so the only fix from inside the process is to set the variable and re-exec.
public enum BLASRuntime {
    /// The kernel OpenBLAS chose, e.g. "SkylakeX" or "Prescott".
    public static var coreName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// Threads the engine computes with (see ``Parallel/workers``); OpenBLAS itself runs one thread
    /// inside each of them once a model is loaded.
    public static var threads: Int { Parallel.available }

    /// Makes OpenBLAS single-threaded: the engine splits every product across the cores itself.
    /// Idempotent; called when a model loads.
    static func useEngineThreading() { _ = singleThreaded }
    private static let singleThreaded: Void = { openblas_set_num_threads(1) }()

    /// Kernels weaker than what any AVX2 machine can run.
    static let genericCores: Set<String> = ["prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "katmai", "coppermine", "northwood", "banias", "unknown"]

    /// The kernel this CPU should use according to /proc/cpuinfo, or nil if OpenBLAS's own choice is fine.
    public static func recommendedCoreType(cpuFlags: Set<String>, currentCore: String) -> String? {
        guard genericCores.contains(currentCore.lowercased()) else { return nil }
        if ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"].allSatisfy(cpuFlags.contains) { return "SkylakeX" }
        if ["avx2", "fma"].allSatisfy(cpuFlags.contains) { return "Haswell" }
        if cpuFlags.contains("avx") { return "Sandybridge" }
        return nil
    }

    /// The flags line of /proc/cpuinfo (empty where there is none).
    public static func cpuFlags() -> Set<String> { CPUFeatures.flags() }

    /// The decision an executable takes at start-up, before doing anything else.
    public enum KernelDecision: Equatable, Sendable {
        /// OpenBLAS already runs a suitable kernel (or the user chose one): carry on.
        case keep
        /// Set `OPENBLAS_CORETYPE` to this value and re-execute the process.
        case reexec(coreType: String)
    }

    public static func kernelDecision(environment: [String: String] = ProcessInfo.processInfo.environment) -> KernelDecision {
        // An explicit setting is honoured, including one we set before re-executing.
        if environment["OPENBLAS_CORETYPE"] != nil { return .keep }
        if let core = recommendedCoreType(cpuFlags: cpuFlags(), currentCore: coreName) { return .reexec(coreType: core) }
        return .keep
    }

    /// The variables this process needs set before its libraries load (each reads them only then),
    /// for a model of `precision`:
    /// - `OPENBLAS_CORETYPE`, by ``kernelDecision(environment:)``;
    /// - `OMP_WAIT_POLICY=PASSIVE` for bf16 and int8, unless set: oneDNN runs on OpenMP, whose idle
    ///   threads otherwise spin for a while after each product, against the engine's own threads
    ///   doing the layer norms, GELU and attention in between (int8 vision encoder, BLIP-large,
    ///   2 threads, AMD EPYC Zen 3: 2.43 s passive against 2.93–3.06 s spinning).
    public static func environmentChanges(for precision: Precision,
                                          environment: [String: String] = ProcessInfo.processInfo.environment) -> [String: String] {
        var changes: [String: String] = [:]
        if case .reexec(let coreType) = kernelDecision(environment: environment) { changes["OPENBLAS_CORETYPE"] = coreType }
        if precision != .float32 && environment["OMP_WAIT_POLICY"] == nil { changes["OMP_WAIT_POLICY"] = "PASSIVE" }
        return changes
    }

    /// Applies ``environmentChanges(for:environment:)``: when there are any, sets them and
    /// re-executes the process (same pid, environment and open descriptors, so sockets passed by
    /// systemd survive). Call it first thing in an executable, once its options are known.
    /// - Returns: nil when no re-execution was needed; otherwise it returns only if `execv` failed,
    ///   with a sentence for the caller to log.
    public static func reexecIfNeeded(for precision: Precision) -> String? {
        let changes = environmentChanges(for: precision)
        guard !changes.isEmpty else { return nil }
        for (name, value) in changes { setenv(name, value, 1) }
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        return "could not re-execute with \(changes.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")) (\(String(cString: strerror(errno)))), continuing with OpenBLAS kernel \(coreName)"
    }
}
