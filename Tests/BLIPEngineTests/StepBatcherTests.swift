import Foundation
import Testing
@testable import BLIPEngine

/// Concurrent captions decoded together (StepBatcher) must give exactly what each gives alone.
@Suite("Decode steps of concurrent captions batched")
struct StepBatcherTests {
    static let images = ["chelsea_q95_444.jpg", "rocket.png", "astronaut_q90_420.jpg", "exif_orientation6.jpg"]

    /// Sessions stepped together get bit-identical logits to the same sessions stepped alone, with
    /// different row counts (greedy, beam 3), images and positions in one step.
    @Test(arguments: ["tiny-a", "tiny-b"])
    func batchedStepsMatchSteppingAlone(_ model: String) throws {
        let captioner = try Captioner(folder: Fixtures.modelFolder(model))
        let m = captioner.model, vc = m.config.vision, p = m.preprocessor
        let normalizer = ImageNormalizer(imageSize: p.imageSize, mean: p.imageMean, std: p.imageStd, rescaleFactor: p.rescaleFactor)
        let state = VisionState(config: vc)
        var features: [FloatBuffer] = []
        for name in Self.images.prefix(3) {
            let rgb = try ImageDecoder.decode(try Fixtures.imageBytes(name))
            let pixels = FloatBuffer(count: 3 * p.imageSize * p.imageSize)
            normalizer.pixelValues(from: rgb, into: UnsafeMutableBufferPointer(start: pixels.pointer, count: pixels.count))
            let f = FloatBuffer(count: vc.tokenCount * vc.hiddenSize)
            m.encodeImage(pixels: pixels.pointer, into: f.pointer, state: state)
            features.append(f)
        }
        let rows = [1, 3, 2]
        func sessions() -> [DecoderSession] {
            zip(features, rows).map { m.makeSession(features: $0.0.pointer, maxRows: $0.1, maxLength: 12) }
        }
        let alone = sessions(), together = sessions()
        let bos = m.config.text.bosTokenID
        // Session 0 gets two extra prefix steps first, so the batched step mixes positions.
        for s in [alone[0], together[0]] { _ = try s.step([bos]); _ = try s.step([1037]) }
        for (i, s) in alone.enumerated() {
            _ = try s.step([bos])
            s.reorder(Array(repeating: 0, count: rows[i]))
        }
        try captioner.batcher.stepTogether(together, tokens: together.map { _ in [bos] })
        for (i, s) in together.enumerated() { s.reorder(Array(repeating: 0, count: rows[i])) }
        let vocab = m.config.text.vocabSize
        for position in 0..<5 {
            let tokens = rows.enumerated().map { i, n in (0..<n).map { Int32(1000 + 13 * i + 5 * $0 + position) } }
            var expected: [[Float]] = []
            for (s, t) in zip(alone, tokens) { expected.append(Array(try s.step(t))) }
            try captioner.batcher.stepTogether(together, tokens: tokens)
            for (i, s) in together.enumerated() {
                let got = Array(s.logits)
                #expect(got.count == rows[i] * vocab)
                // A Bool, not the arrays: on failure Swift Testing would diff thousands of floats.
                let differing = zip(got, expected[i]).filter { $0 != $1 }.count
                #expect(got.count == expected[i].count && differing == 0,
                        "session \(i) at step \(position): \(differing) batched logits differ from stepping alone")
                #expect(s.length == alone[i].length)
            }
        }
    }

    /// Captions run on several threads at once — greedy, beam search with two return sequences, a
    /// prompt — give exactly the candidates (tokens, text, score) each gives alone.
    @Test func concurrentCaptionsEqualSequentialOnes() throws {
        let captioner = try Captioner(folder: Fixtures.modelFolder("tiny-a"))
        var jobs: [(image: [UInt8], parameters: GenerationParameters)] = []
        for (i, name) in Self.images.enumerated() {
            var p = GenerationParameters()
            p.numBeams = [1, 3, 2, 3][i]
            p.numReturnSequences = i == 1 ? 2 : 1
            p.maxNewTokens = 8 + i
            if i == 2 { p.prompt = "a picture of" }
            jobs.append((try Fixtures.imageBytes(name), p))
        }
        let sequential = try jobs.map { try captioner.caption(image: $0.image, parameters: $0.parameters).candidates }
        let results = LockedResults(count: jobs.count * 3)
        let jobsCopy = jobs
        DispatchQueue.concurrentPerform(iterations: jobs.count * 3) { i in
            let job = jobsCopy[i % jobsCopy.count]
            results.set(i, Result { try captioner.caption(image: job.image, parameters: job.parameters).candidates })
        }
        for i in 0..<(jobs.count * 3) {
            let got = try #require(results.get(i)).get()
            #expect(got == sequential[i % jobs.count], "job \(i % jobs.count) run concurrently differs from alone")
        }
        let stats = captioner.batcher.batchedStatistics
        print("measured: \(jobs.count * 3) concurrent captions, \(stats.steps) batched steps serving \(stats.captions) caption-steps")
    }
}

/// Results written by concurrent workers.
final class LockedResults: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Result<[CaptionCandidate], any Error>?]
    init(count: Int) { values = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ value: Result<[CaptionCandidate], any Error>) { lock.withLock { values[i] = value } }
    func get(_ i: Int) -> Result<[CaptionCandidate], any Error>? { lock.withLock { values[i] } }
}

/// A caption waiting for its turn ends the wait when its checkpoint throws (deadline, cancellation),
/// instead of after the other captions' encodes.
@Suite("StepBatcher waits are interruptible")
struct StepBatcherInterruptTests {
    struct Stop: Error {}

    @Test func encodeWaitEndsAtTheCheckpoint() throws {
        let captioner = try Captioner(folder: Fixtures.modelFolder("tiny-a"))
        let batcher = captioner.batcher
        let holding = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        let holder = Thread {
            _ = try? batcher.encode { holding.signal(); release.wait() }
        }
        holder.start()
        holding.wait()
        let start = Date()
        var checks = 0
        #expect(throws: Stop.self) {
            try batcher.encode(checkpoint: { checks += 1; if checks == 3 { throw Stop() } }) { Issue.record("ran while another encode held the turn") }
        }
        let waited = Date().timeIntervalSince(start)
        release.signal()
        #expect(checks == 3)
        #expect(waited < 2, "the wait ended \(waited) s later")
        // The turn is free again: a later encode runs.
        #expect(try batcher.encode { 42 } == 42)
    }

    @Test func stepWaitEndsAtTheCheckpointAndTheOthersGoOn() throws {
        let captioner = try Captioner(folder: Fixtures.modelFolder("tiny-a"))
        let m = captioner.model, vc = m.config.vision, batcher = captioner.batcher
        let features = FloatBuffer(count: vc.tokenCount * vc.hiddenSize)
        let a = m.makeSession(features: features.pointer, maxRows: 1, maxLength: 4)
        let b = m.makeSession(features: features.pointer, maxRows: 1, maxLength: 4)
        batcher.join()  // a: generating, but does not ask for a step yet
        batcher.join()  // b
        var checks = 0
        #expect(throws: Stop.self) {
            _ = try batcher.step(b, [m.config.text.bosTokenID], checkpoint: { checks += 1; if checks == 2 { throw Stop() } })
        }
        #expect(b.length == 0, "the withdrawn step must not have run")
        batcher.leave()  // b gave up
        // a alone now steps at once.
        _ = try batcher.step(a, [m.config.text.bosTokenID])
        #expect(a.length == 1)
        batcher.leave()
    }
}

/// More rows than one step can hold (the weight-streaming kernel's limit) are stepped in turns, so
/// each session still gets exactly what it gets alone.
@Suite("StepBatcher row limit")
struct StepBatcherRowLimitTests {
    @Test func sessionsBeyondTheRowLimitStillMatchSteppingAlone() throws {
        let captioner = try Captioner(folder: Fixtures.modelFolder("tiny-a"))
        let m = captioner.model, vc = m.config.vision
        let features = FloatBuffer(count: vc.tokenCount * vc.hiddenSize)
        for i in 0..<features.count { features.pointer[i] = sin(Float(i) * 0.01) }
        let rows = 12  // 3 sessions × 12 rows = 36 > Linear.skinnyRows
        try #require(3 * rows > Linear.skinnyRows)
        func sessions() throws -> [DecoderSession] {
            try (0..<3).map { _ in
                let s = m.makeSession(features: features.pointer, maxRows: rows, maxLength: 4)
                _ = try s.step([m.config.text.bosTokenID])
                s.reorder(Array(repeating: 0, count: rows))
                return s
            }
        }
        let alone = try sessions(), together = try sessions()
        let tokens = (0..<3).map { c in (0..<rows).map { Int32(1000 + 17 * c + $0) } }
        let expected = try zip(alone, tokens).map { Array(try $0.step($1)) }
        try captioner.batcher.stepTogether(together, tokens: tokens)
        for i in 0..<3 {
            // A count, not the arrays: on failure Swift Testing would diff thousands of floats.
            let differing = zip(Array(together[i].logits), expected[i]).filter { $0 != $1 }.count
            #expect(together[i].logits.count == expected[i].count && differing == 0, "session \(i): \(differing) logits differ")
        }
    }
}
