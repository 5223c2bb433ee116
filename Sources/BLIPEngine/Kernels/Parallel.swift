import Dispatch
import Foundation

/// Splits the forward pass's work across the cores. The engine does all of its own threading:
/// OpenBLAS runs single-threaded inside each piece (``BLASRuntime/useEngineThreading()``), so one
/// fork/join per operation replaces OpenBLAS's per-call hand-offs, and no idle OpenBLAS thread spins
/// against the non-GEMM work (softmax, GELU, layer norm) between products.
enum Parallel {
    /// Threads the work of the calling thread is split into: ``available``, or fewer inside
    /// ``withWorkers(_:_:)`` (an encode lane).
    static var workers: Int {
        guard let raw = pthread_getspecific(laneKey) else { return available }
        return Int(bitPattern: raw)
    }

    /// Runs `body` with its operations split into at most `count` pieces, on this thread: how an
    /// encode lane shares the cores with the lanes beside it. Not inherited by other threads (the
    /// pieces of one operation never split further).
    static func withWorkers<T>(_ count: Int, _ body: () throws -> T) rethrows -> T {
        let previous = pthread_getspecific(laneKey)
        pthread_setspecific(laneKey, UnsafeRawPointer(bitPattern: max(1, count)))
        defer { pthread_setspecific(laneKey, previous) }
        return try body()
    }

    /// The per-thread worker cap of ``withWorkers(_:_:)`` (unset: ``available``).
    private static let laneKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    /// Threads the engine computes with: `BLIP_THREADS`, else `OPENBLAS_NUM_THREADS`, else the CPUs
    /// this process may run on (its affinity mask, so `taskset` and systemd's `CPUAffinity=` count).
    static let available: Int = {
        let environment = ProcessInfo.processInfo.environment
        for name in ["BLIP_THREADS", "OPENBLAS_NUM_THREADS"] {
            if let value = environment[name].flatMap({ Int($0) }), value >= 1 { return min(value, 256) }
        }
        // Foundation counts the affinity mask (and a cgroup CPU quota) on Linux.
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }()

    /// Calls `body` with disjoint ranges covering 0..<count, each a multiple of `granularity` long
    /// (except the last), in parallel when there is at least `minimumChunk` work per worker.
    static func forChunks(count: Int, granularity: Int, minimumChunk: Int, _ body: (Range<Int>) -> Void) {
        forChunks(count: count, granularity: granularity, minimumChunk: minimumChunk) { _, range in body(range) }
    }

    /// As above, also passing the chunk's index (0..<workers), so a chunk can use per-worker scratch.
    static func forChunks(count: Int, granularity: Int, minimumChunk: Int, _ body: (Int, Range<Int>) -> Void) {
        let chunks = min(workers, count / max(minimumChunk, 1))
        if chunks <= 1 {
            if count > 0 { body(0, 0..<count) }
            return
        }
        let units = (count + granularity - 1) / granularity
        let perChunk = (units + chunks - 1) / chunks * granularity
        withoutActuallyEscaping(body) { body in
            let box = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                let start = c * perChunk, end = min(count, start + perChunk)
                if start < end { box.value(c, start..<end) }
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
