import BLIPEngine
import COpenBLAS
import Foundation

/// What this machine can do right now, measured in the same run as the engine so the numbers share
/// the same noise (other builds on the same cores): sgemm throughput and streaming read bandwidth.
struct MachineProbe {
    /// sgemm GFLOP/s on the vision MLP's shape, (577 × 1024) · (4096 × 1024)ᵀ, median of `runs`.
    static func sgemmGFLOPs(runs: Int) -> Double {
        let m = 577, n = 4096, k = 1024
        let a = UnsafeMutablePointer<Float>.allocate(capacity: m * k)
        let b = UnsafeMutablePointer<Float>.allocate(capacity: n * k)
        let c = UnsafeMutablePointer<Float>.allocate(capacity: m * n)
        defer { a.deallocate(); b.deallocate(); c.deallocate() }
        for i in 0..<(m * k) { a[i] = Float(i % 7) * 0.01 }
        for i in 0..<(n * k) { b[i] = Float(i % 5) * 0.01 }
        let flops = 2.0 * Double(m * n * k)
        func rate(_ product: () -> Void) -> Double {
            let times = (0...runs).map { _ in Stopwatch.time(product) }.dropFirst()  // the first call warms buffers and threads
            return flops / Stats.median(Array(times)) / 1e9
        }
        // The machine's best of the two ways to use every core: OpenBLAS's own threads on the whole
        // product, and (as the engine runs) one single-threaded sgemm per core on a slice of the
        // output features.
        let workers = BLASRuntime.threads
        openblas_set_num_threads(Int32(workers))
        let threaded = rate {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k),
                        1, a, Int32(k), b, Int32(k), 0, c, Int32(n))
        }
        openblas_set_num_threads(1)
        let (aa, ba, ca) = (UInt(bitPattern: a), UInt(bitPattern: b), UInt(bitPattern: c))
        let sliced = rate {
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                let n0 = w * n / workers, n1 = (w + 1) * n / workers
                let a = UnsafePointer<Float>(bitPattern: aa)!, b = UnsafePointer<Float>(bitPattern: ba)!
                let c = UnsafeMutablePointer<Float>(bitPattern: ca)!
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n1 - n0), Int32(k),
                            1, a, Int32(k), b + n0 * k, Int32(k), 0, c + n0, Int32(n))
            }
        }
        return max(threaded, sliced)
    }

    /// Streaming read bandwidth in GB/s over a buffer much larger than the caches, with two threads
    /// (as a decode step's gemv does), median of `runs`.
    static func readBandwidthGBs(runs: Int, bytes: Int = 1 << 29) -> Double {
        let count = bytes / MemoryLayout<Float>.size
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: count)
        defer { buffer.deallocate() }
        buffer.initialize(repeating: 1, count: count)
        let threads = 2
        let sink = UnsafeMutablePointer<Float>.allocate(capacity: threads)
        defer { sink.deallocate() }
        // Addresses cross into the worker closures as integers (raw pointers are not Sendable).
        let bufferAddress = UInt(bitPattern: buffer), sinkAddress = UInt(bitPattern: sink)
        let times = (0...runs).map { _ in
            Stopwatch.time {
                DispatchQueue.concurrentPerform(iterations: threads) { t in
                    let chunk = count / threads
                    let base = UnsafeRawPointer(bitPattern: bufferAddress)! + 4 * t * chunk
                    let sink = UnsafeMutablePointer<Float>(bitPattern: sinkAddress)!
                    var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>(), acc2 = SIMD8<Float>(), acc3 = SIMD8<Float>()
                    var i = 0
                    while i + 32 <= chunk {
                        acc0 += base.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
                        acc1 += base.loadUnaligned(fromByteOffset: 4 * (i + 8), as: SIMD8<Float>.self)
                        acc2 += base.loadUnaligned(fromByteOffset: 4 * (i + 16), as: SIMD8<Float>.self)
                        acc3 += base.loadUnaligned(fromByteOffset: 4 * (i + 24), as: SIMD8<Float>.self)
                        i += 32
                    }
                    sink[t] = (acc0 + acc1 + acc2 + acc3).sum()
                }
            }
        }.dropFirst()
        return Double(count * 4) / Stats.median(Array(times)) / 1e9
    }
}

extension MachineProbe {
    /// GFLOP/s of sgemm on each product shape of the vision encoder (row-major, B transposed as the
    /// weights are stored), to see which shapes fall short of the probe.
    static func visionShapes(runs: Int) -> [String: Double] {
        // (name, m, n, k, transB, lda, ldb)
        let shapes: [(String, Int, Int, Int, Bool, Int, Int)] = [
            ("qkv", 577, 3072, 1024, true, 1024, 1024), ("proj", 577, 1024, 1024, true, 1024, 1024),
            ("fc1", 577, 4096, 1024, true, 1024, 1024), ("fc2", 577, 1024, 4096, true, 4096, 4096),
            ("scores_head", 577, 577, 64, true, 3072, 3072), ("context_head", 577, 64, 577, false, 577, 3072),
        ]
        var out: [String: Double] = [:]
        let big = UnsafeMutablePointer<Float>.allocate(capacity: 4096 * 4096)
        let big2 = UnsafeMutablePointer<Float>.allocate(capacity: 4096 * 4096)
        let c = UnsafeMutablePointer<Float>.allocate(capacity: 4096 * 4096)
        defer { big.deallocate(); big2.deallocate(); c.deallocate() }
        big.initialize(repeating: 0.01, count: 4096 * 4096)
        big2.initialize(repeating: 0.01, count: 4096 * 4096)
        for (name, m, n, k, transB, lda, ldb) in shapes {
            let times = (0...runs).map { _ in
                Stopwatch.time {
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, transB ? CblasTrans : CblasNoTrans, Int32(m), Int32(n), Int32(k),
                                1, big, Int32(lda), big2, Int32(ldb), 0, c, Int32(n))
                }
            }.dropFirst()
            out[name] = 2.0 * Double(m * n * k) / Stats.median(Array(times)) / 1e9
        }
        return out
    }
}
