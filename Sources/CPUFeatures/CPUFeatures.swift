import Foundation

/// What this CPU can do, read from /proc/cpuinfo, and whether the engine as built can run on it.
///
/// On x86-64, BLIPEngine is compiled for Haswell-class CPUs (AVX2 + FMA; Package.swift, unless built
/// with `BLIP_PORTABLE=1`): its 8-lane SIMD kernels then run as single AVX instructions instead of
/// pairs of SSE ones. This module is built for the baseline instruction set, so executables can check
/// before the first engine instruction runs and say what is wrong instead of dying of SIGILL.
public enum CPUFeatures {
    /// The flags line of /proc/cpuinfo (empty where there is none).
    public static func flags() -> Set<String> {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let colon = line.firstIndex(of: ":") else { return [] }
        return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
    }

    /// The /proc/cpuinfo flags of what `-target-cpu haswell` lets the compiler use.
    public static let engineRequirements: [String] = {
        #if BLIP_ENGINE_HASWELL
        return ["avx", "avx2", "fma", "bmi1", "bmi2", "f16c", "movbe", "popcnt", "sse4_2", "abm"]
        #else
        return []
        #endif
    }()

    /// nil when the engine can run here; otherwise a sentence naming the missing instructions and
    /// what to do. Unknown flags (no /proc/cpuinfo) are not held against the CPU.
    public static func engineProblem(flags: Set<String> = flags()) -> String? {
        guard !flags.isEmpty else { return nil }
        let missing = engineRequirements.filter { !flags.contains($0) }
        guard !missing.isEmpty else { return nil }
        return "this CPU lacks \(missing.joined(separator: ", ")), which this build of the engine uses (x86-64 with AVX2 and FMA); "
            + "rebuild on this machine with BLIP_PORTABLE=1 swift build -c release for a slower build that runs on any x86-64 CPU"
    }
}
