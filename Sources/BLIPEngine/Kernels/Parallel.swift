import Dispatch

/// Splits element-wise work across the cores. The forward pass's non-GEMM ops (GELU over
/// 577 × 4096 activations, softmax over 16 × 577 × 577 scores) would otherwise leave the second core
/// idle between OpenBLAS calls.
enum Parallel {
    /// Workers to use; the machines this targets have two cores and OpenBLAS uses the same ones.
    static let workers = 2

    /// Calls `body` with disjoint ranges covering 0..<count, each a multiple of `granularity` long
    /// (except the last), in parallel when there is at least `minimumChunk` work per worker.
    static func forChunks(count: Int, granularity: Int, minimumChunk: Int, _ body: (Range<Int>) -> Void) {
        let chunks = min(workers, count / max(minimumChunk, 1))
        if chunks <= 1 {
            if count > 0 { body(0..<count) }
            return
        }
        let units = (count + granularity - 1) / granularity
        let perChunk = (units + chunks - 1) / chunks * granularity
        withoutActuallyEscaping(body) { body in
            let box = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                let start = c * perChunk, end = min(count, start + perChunk)
                if start < end { box.value(start..<end) }
            }
        }
    }
}

/// Carries a value the compiler cannot prove Sendable into `concurrentPerform`, whose workers only
/// touch disjoint memory and finish before it returns.
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
