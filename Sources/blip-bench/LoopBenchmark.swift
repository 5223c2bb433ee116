import BLIPEngine
import Foundation

/// The engine loop's figures on a full-size model (`blip-bench --model DIR --image FILE --loop`),
/// through `Captioner.submit` exactly as the daemon's service submits (no socket):
/// - a second prompt for an image just captioned (a feature-cache hit) ÷ the first call;
/// - three prompts in one call ÷ one prompt, on images not seen before;
/// - cancel-to-answer time of a call cancelled in the middle of its encode;
/// - images/s with 4 callers on distinct images ÷ 1 caller (encode lanes), cache off: `rounds`
///   rounds, each 4 images one at a time then 8 at once (new images every round), so that a
///   machine's drift lands in both; the medians are reported, and each round's ratio.
/// Each caption is the default (beam 3, at most 20 tokens in all).
struct LoopBenchmark {
    let folder: ModelFolder
    let image: [UInt8]
    let precision: Precision
    var rounds = 1

    /// A distinct raw 384×384 image per seed (no cache hit between them).
    static func syntheticImage(_ seed: Int) -> (bytes: [UInt8], format: ImageFormat) {
        let side = 384
        var state = UInt64(seed) &* 0x9E37_79B9_7F4A_7C15 | 1
        var bytes = [UInt8](repeating: 0, count: side * side * 3)
        for i in bytes.indices {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            bytes[i] = UInt8(truncatingIfNeeded: (state >> 24) & 0x3F) &+ UInt8(truncatingIfNeeded: (i / 3 / side) / 2)
        }
        return (bytes, .rawRGB8(width: side, height: side))
    }

    /// Submits `jobs` at once; returns the seconds until each completed.
    static func timed(_ captioner: Captioner, _ jobs: [CaptionJob]) throws -> [Double] {
        let clock = ContinuousClock()
        let start = clock.now
        let group = DispatchGroup()
        let times = TimesBox(count: jobs.count)
        for (i, job) in jobs.enumerated() {
            group.enter()
            _ = try captioner.submit(job) { result in
                times.set(i, (clock.now - start).seconds, ok: (try? result.get()) != nil)
                group.leave()
            }
        }
        group.wait()
        guard times.allOK else { throw BenchError.usage("a benchmark caption failed") }
        return times.seconds
    }

    func run() throws -> [String: Double] {
        var out: [String: Double] = [:]
        let p = GenerationParameters()
        var withPrompt = GenerationParameters()
        withPrompt.prompt = "a picture of"
        var other = GenerationParameters()
        other.prompt = "a photo of"

        let cached = try Captioner(folder: folder, precision: precision,
                                   configuration: .init(maxBatch: 4, featureCacheBytes: 256 << 20))
        _ = try cached.warmUp()
        // Second prompt on a cached image ÷ first call.
        let first = try Self.timed(cached, [CaptionJob(image: image, prompts: [p])])[0]
        let second = try Self.timed(cached, [CaptionJob(image: image, prompts: [withPrompt])])[0]
        out["loop_first_call_s"] = first
        out["loop_cached_second_prompt_s"] = second
        out["loop_cached_ratio"] = second / first

        // Three prompts in one call ÷ one prompt, images not seen before.
        let a = Self.syntheticImage(1), b = Self.syntheticImage(2)
        let one = try Self.timed(cached, [CaptionJob(image: a.bytes, format: a.format, prompts: [p])])[0]
        let three = try Self.timed(cached, [CaptionJob(image: b.bytes, format: b.format, prompts: [p, withPrompt, other])])[0]
        out["loop_one_prompt_s"] = one
        out["loop_three_prompts_s"] = three
        out["loop_three_prompts_ratio"] = three / one

        // Cancel mid-encode: cancel 1 s after submitting (inside the vision encoder), time the answer.
        var cancelTimes: [Double] = []
        for seed in 10..<13 {
            let img = Self.syntheticImage(seed)
            let clock = ContinuousClock()
            let done = DispatchSemaphore(value: 0)
            let handle = try cached.submit(CaptionJob(image: img.bytes, format: img.format, prompts: [p])) { _ in
                done.signal()
            }
            Thread.sleep(forTimeInterval: 1.0)
            let cancelled = clock.now
            cached.cancel(handle)
            done.wait()
            cancelTimes.append((clock.now - cancelled).seconds)
        }
        out["loop_cancel_to_answer_s"] = Stats.median(cancelTimes)
        out["loop_cancel_to_answer_max_s"] = cancelTimes.max()!

        // Throughput: 1 caller (one image at a time) against 4 callers (4 in flight), cache off.
        let plain = try Captioner(folder: folder, precision: precision, configuration: .init(maxBatch: 4))
        _ = try plain.warmUp()
        var alone: [Double] = [], together: [Double] = [], ratios: [Double] = []
        for round in 0..<max(1, rounds) {
            let images = (0..<12).map { Self.syntheticImage(100 + 12 * round + $0) }
            var sequential = 0.0
            for img in images.prefix(4) {
                sequential += try Self.timed(plain, [CaptionJob(image: img.bytes, format: img.format, prompts: [p])])[0]
            }
            let concurrent = try Self.timed(plain, images.suffix(8).map { CaptionJob(image: $0.bytes, format: $0.format, prompts: [p]) }).max()!
            alone.append(4 / sequential)
            together.append(8 / concurrent)
            ratios.append(together.last! / alone.last!)
        }
        out["loop_1_caller_images_per_s"] = Stats.median(alone)
        out["loop_4_callers_images_per_s"] = Stats.median(together)
        out["loop_4_over_1"] = Stats.median(ratios)
        out["loop_rounds"] = Double(ratios.count)
        for (i, r) in ratios.enumerated() { out["loop_4_over_1_round_\(i + 1)"] = r }
        let lanes = plain.loop.configuration.lanes(forEncoding: Int.max)
        out["loop_encode_lanes"] = Double(lanes.lanes)
        out["loop_threads_per_lane"] = Double(lanes.threadsPerLane)
        out["loop_batched_steps"] = Double(plain.loop.statistics.batchedSteps)
        return out
    }
}

/// Completion times written by the loop's thread.
final class TimesBox: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Double]
    private var failures = 0
    init(count: Int) { values = Array(repeating: 0, count: count) }
    func set(_ i: Int, _ seconds: Double, ok: Bool) {
        lock.withLock {
            values[i] = seconds
            if !ok { failures += 1 }
        }
    }
    var seconds: [Double] { lock.withLock { values } }
    var allOK: Bool { lock.withLock { failures == 0 } }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
