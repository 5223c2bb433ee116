import CKernels
import Foundation

/// How the vision encoder's linear layers (patch embedding, qkv, projection, fc1, fc2) multiply
/// over the image tokens. Chosen when a model loads (`BLIP_VISION_GEMM=blas|packed`, see
/// ``fromEnvironment(_:)``); both give results independent of the thread split.
public enum VisionGEMM: String, Sendable, CaseIterable {
    /// OpenBLAS `sgemm` on the mapped float32 weights, one single-threaded call per core on a
    /// slice of the output features (OpenBLAS packs the slice's weights on every call).
    case blas
    /// The packed-weight kernel of `CKernels` (AVX2 + FMA 6×16): the weights are packed once at
    /// load into 16-column panels, replacing the mapped float32 pages of those layers.
    case packed

    /// This CPU can run the packed kernel (AVX2 and FMA, checked with `cpuid`).
    public static let packedAvailable: Bool = blip_gemm_available() != 0

    /// What a model uses when nothing is asked for.
    public static let standard: VisionGEMM = .blas

    /// `BLIP_VISION_GEMM` (`blas` or `packed`; anything else, or unset: ``standard``), as the CPU
    /// allows: `packed` becomes `blas` on a CPU without AVX2 and FMA.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> VisionGEMM {
        (environment["BLIP_VISION_GEMM"].flatMap(VisionGEMM.init(rawValue:)) ?? standard).runnable
    }

    /// This choice, or `blas` where the packed kernel cannot run.
    public var runnable: VisionGEMM { self == .packed && !Self.packedAvailable ? .blas : self }
}

/// A weight (n, k) in the packed kernel's layout, `[ceil(n/16)][k][16]`, in memory it owns
/// (anonymous, 2 MiB-aligned and advised for transparent huge pages: fewer page faults while
/// packing at load, fewer TLB misses while streaming panels).
final class PackedWeight: @unchecked Sendable {
    // @unchecked: written once while loading, read-only afterwards.
    let values: UnsafeMutablePointer<Float>
    let outFeatures: Int
    let inFeatures: Int
    private let mapping: UnsafeMutableRawPointer
    private let mappedBytes: Int

    /// Packs `weight` (n, k) row-major, the panels split across the cores; nil when the memory
    /// cannot be had (the layer then keeps its float32 weight and OpenBLAS).
    init?(packing weight: UnsafePointer<Float>, outFeatures n: Int, inFeatures k: Int) {
        precondition(VisionGEMM.packedAvailable, "the packed GEMM needs AVX2 and FMA")
        outFeatures = n
        inFeatures = k
        let huge = 2 << 20
        let bytes = blip_gemm_packed_count(n, k) * MemoryLayout<Float>.size
        mappedBytes = (bytes + huge - 1) / huge * huge + huge
        guard let raw = mmap(nil, mappedBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              raw != MAP_FAILED else { return nil }
        mapping = raw
        let aligned = (Int(bitPattern: raw) + huge - 1) / huge * huge
        let start = UnsafeMutableRawPointer(bitPattern: aligned)!
        _ = madvise(start, mappedBytes - huge, MADV_HUGEPAGE)  // a hint: fine if refused
        values = start.bindMemory(to: Float.self, capacity: bytes / MemoryLayout<Float>.size)
        let panels = (n + 15) / 16
        Parallel.forChunks(count: panels, granularity: 1, minimumChunk: 8) { range in
            blip_gemm_pack(weight, n, k, range.lowerBound, range.upperBound, self.values)
        }
    }

    deinit { munmap(mapping, mappedBytes) }
}

extension Linear {
    /// This layer reading a packed copy of its weight (``VisionGEMM/packed``), or itself for `.blas`.
    /// The float32 weight's pages are given back at once where they are pages of the mapped file,
    /// so the copy replaces them in memory rather than adding to it, also while loading.
    func using(_ gemm: VisionGEMM, releasingFrom store: WeightStore) -> Linear {
        guard gemm.runnable == .packed,
              let packed = PackedWeight(packing: weight, outFeatures: outFeatures, inFeatures: inFeatures) else { return self }
        var linear = self
        linear.packedWeight = packed
        store.releaseWeight(of: self)
        return linear
    }

    /// `apply` with the packed weight, for any number of rows (a warm-up's few image tokens too, so
    /// the released float32 pages are never read again). The output features are split across the
    /// cores in whole 16-column panels and K is never split, so every element is computed the same
    /// way whatever the split: results do not depend on the thread count or the encode lanes.
    func packedApply(_ packed: PackedWeight, _ x: UnsafePointer<Float>, rows: Int, xStride: Int,
                     into y: UnsafeMutablePointer<Float>, yStride: Int, accumulate: Bool, then epilogue: Epilogue) {
        let n = outFeatures, k = inFeatures
        Parallel.forChunks(count: n, granularity: 16, minimumChunk: 64) { columns in
            blip_gemm_packed(rows, n, k, x, xStride, packed.values, columns.lowerBound, columns.upperBound,
                             bias, accumulate ? 1 : 0, y, yStride)
            if case .gelu = epilogue {
                // The same function as the OpenBLAS path: elementwise, so the same bits.
                for r in 0..<rows { geluInPlace(y + r * yStride + columns.lowerBound, count: columns.count) }
            }
        }
    }
}
