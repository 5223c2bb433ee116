import CDNNL
import CPUFeatures

/// The number format a model computes its matrix products in (`--precision`).
///
/// `fp32` is the checkpoint's values and float32 arithmetic: captions token-identical to transformers.
/// The others trade exactness for speed and are measured against `fp32`, never identical to it
/// (`blip-bench --precision-report`, docs/performance.md).
public enum Precision: String, Sendable, CaseIterable, Codable {
    /// float32 everywhere (OpenBLAS and the engine's own kernels).
    case float32 = "fp32"
    /// bfloat16 products with float32 accumulation: the vision encoder's linear layers and the
    /// cross-attention keys and values through oneDNN where the CPU has AVX-512 BF16 or AMX; the
    /// decoder's matrices stored as bfloat16 and widened in registers (activations stay float32).
    /// LayerNorm, softmax, GELU, residuals and logits stay float32.
    case bfloat16 = "bf16"
    /// The vision encoder's linear layers and the cross-attention keys and values with int8
    /// weights (per output channel) and int8 activations (per token, quantised on the fly) through
    /// oneDNN, int32 accumulation; the decoder's matrices int8 weight-only (per output channel),
    /// widened in registers. The patch embedding, attention scores and everything outside the
    /// products stay float32.
    case int8

    /// The values `--precision` takes, for help texts.
    public static var names: String { allCases.map(\.rawValue).joined(separator: "|") }

    /// The help of `--precision` (and its alias `--weights`), the same for every executable.
    public static let help = "Number format of the model's products: fp32 (default; identical to transformers), "
        + "bf16 (bfloat16 products with float32 sums where the CPU has AVX-512 BF16 or AMX; elsewhere only the decoder's weights are bfloat16) "
        + "or int8 (int8 weights and per-token int8 activations through oneDNN; the decoder's weights int8). "
        + "bf16 and int8 are faster and not identical to fp32: check them on your images (blip-bench --precision-report, docs/performance.md). "
        + "--weights is an alias."
}

/// What a ``Precision`` runs as on this CPU: decided once when a model loads, from /proc/cpuinfo's
/// flags and the instruction set oneDNN dispatches to.
public struct PrecisionPlan: Sendable, Equatable {
    /// What was asked for, and is reported (Info's `weights_precision`).
    public let precision: Precision
    /// The instructions the reduced products run on: `avx2`, `avx512` (no BF16/VNNI), `avx2_vnni`,
    /// `avx512_vnni`, `avx512_bf16` or `amx`.
    public let instructionPath: String
    /// How products of many rows (the image tokens) run: in float32 (OpenBLAS), or through oneDNN.
    public let denseProducts: DenseKind?
    /// What decode steps read the decoder's matrices as.
    public let stepWeights: StepWeightKind
    /// Why the CPU runs less than asked for, for the start-up log; nil when it runs what was asked.
    public let warning: String?

    /// The many-row product kinds oneDNN runs.
    public enum DenseKind: Sendable, Equatable {
        case bfloat16
        /// Weights quantised to 8 bits, activations to `activationBits` bits: 8 with VNNI or AMX;
        /// 7 without, where the u8 × s8 pair sums of `vpmaddubsw` would saturate a 16-bit lane at 8
        /// (7-bit activations measured closer to fp32 than 7-bit weights: docs/performance.md).
        case int8(activationBits: Int)
    }

    public enum StepWeightKind: Sendable, Equatable { case float32, bfloat16, int8 }

    /// The plan for `precision` on a CPU with `flags` where oneDNN dispatches to `isa`.
    public static func make(_ precision: Precision, flags: Set<String> = CPUFeatures.flags(),
                            isa: dnnl_cpu_isa_t = dnnl_get_effective_cpu_isa()) -> PrecisionPlan {
        let isaValue = isa.rawValue
        func atLeast(_ level: dnnl_cpu_isa_t) -> Bool { isaValue & level.rawValue == level.rawValue }
        let plainPath = flags.contains("avx512f") ? "avx512" : "avx2"
        switch precision {
        case .float32:
            return PrecisionPlan(precision: precision, instructionPath: plainPath, denseProducts: nil,
                                 stepWeights: .float32, warning: nil)
        case .bfloat16:
            if flags.contains("amx_bf16") && atLeast(dnnl_cpu_isa_avx512_core_amx) {
                return PrecisionPlan(precision: precision, instructionPath: "amx", denseProducts: .bfloat16,
                                     stepWeights: .bfloat16, warning: nil)
            }
            if flags.contains("avx512_bf16") && atLeast(dnnl_cpu_isa_avx512_core_bf16) {
                return PrecisionPlan(precision: precision, instructionPath: "avx512_bf16", denseProducts: .bfloat16,
                                     stepWeights: .bfloat16, warning: nil)
            }
            return PrecisionPlan(
                precision: precision, instructionPath: plainPath, denseProducts: nil, stepWeights: .bfloat16,
                warning: "bf16: this CPU has neither AVX-512 BF16 nor AMX, so bfloat16 products would be emulated and slower than float32; "
                    + "the vision encoder runs in fp32 (\(plainPath)) and only the decoder's weights are bfloat16. "
                    + "--precision int8 is the faster mode on this CPU")
        case .int8:
            if flags.contains("amx_int8") && atLeast(dnnl_cpu_isa_avx512_core_amx) {
                return PrecisionPlan(precision: precision, instructionPath: "amx", denseProducts: .int8(activationBits: 8),
                                     stepWeights: .int8, warning: nil)
            }
            if flags.contains("avx512_vnni") && atLeast(dnnl_cpu_isa_avx512_core_vnni) {
                return PrecisionPlan(precision: precision, instructionPath: "avx512_vnni", denseProducts: .int8(activationBits: 8),
                                     stepWeights: .int8, warning: nil)
            }
            if flags.contains("avx_vnni") && atLeast(dnnl_cpu_isa_avx2_vnni) {
                return PrecisionPlan(precision: precision, instructionPath: "avx2_vnni", denseProducts: .int8(activationBits: 8),
                                     stepWeights: .int8, warning: nil)
            }
            guard atLeast(dnnl_cpu_isa_avx2) else {
                return PrecisionPlan(
                    precision: precision, instructionPath: "generic", denseProducts: nil, stepWeights: .int8,
                    warning: "int8: this CPU lacks AVX2, which oneDNN's int8 products need; the vision encoder runs in fp32")
            }
            return PrecisionPlan(
                precision: precision, instructionPath: plainPath, denseProducts: .int8(activationBits: 7), stepWeights: .int8,
                warning: "int8: this CPU lacks VNNI (AVX-512 VNNI, AVX-VNNI) and AMX: the vision encoder's activations are quantised to 7 bits "
                    + "(8-bit ones would saturate \(plainPath)'s 16-bit pair sums), which costs some accuracy (docs/performance.md)")
        }
    }
}
