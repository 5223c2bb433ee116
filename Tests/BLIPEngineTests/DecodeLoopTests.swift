import BLIPTestSupport
import Foundation
import Testing
@testable import BLIPEngine

/// The engine loop: what it does with several jobs at once, cancellation, deadlines, liveness,
/// several prompts per job and the feature cache.
@Suite("Engine loop")
struct DecodeLoopTests {
    static let images = ["chelsea_q95_444.jpg", "rocket.png", "astronaut_q90_420.jpg", "exif_orientation6.jpg"]

    /// Submits `jobs` all at once and waits for every completion, in submission order.
    static func run(_ captioner: Captioner, _ jobs: [CaptionJob]) throws -> [Result<CaptionJobResult, any Error>] {
        let results = Completions(count: jobs.count)
        for (i, job) in jobs.enumerated() {
            _ = try captioner.submit(job) { results.set(i, $0) }
        }
        return results.waitForAll()
    }

    static func parameters(beams: Int, newTokens: Int, prompt: String? = nil, returns: Int = 1) -> GenerationParameters {
        var p = GenerationParameters()
        p.numBeams = beams
        p.maxNewTokens = newTokens
        p.prompt = prompt
        p.numReturnSequences = returns
        return p
    }

    /// Jobs submitted together — greedy, beam search with two return sequences, a prompt — give
    /// exactly the candidates (tokens, text, score, finish reason) each gives alone, and their
    /// decode steps really were batched.
    @Test(arguments: ["tiny-a", "tiny-d"])
    func jobsTogetherEqualJobsAloneAndAreBatched(_ model: String) throws {
        let captioner = try Captioner(folder: Fixtures.modelFolder(model), configuration: .init(maxBatch: 4))
        var jobs: [CaptionJob] = []
        for (i, name) in Self.images.enumerated() {
            let p = Self.parameters(beams: [1, 3, 2, 3][i], newTokens: 8 + i, prompt: i == 2 ? "a picture of" : nil,
                                    returns: i == 1 ? 2 : 1)
            jobs.append(CaptionJob(image: try Fixtures.imageBytes(name), prompts: [p]))
        }
        let alone = try jobs.map { try captioner.caption(image: $0.image, parameters: $0.prompts[0]).candidates }
        let before = captioner.loop.statistics.batchedSteps
        let together = try Self.run(captioner, jobs + jobs + jobs)
        for (i, result) in together.enumerated() {
            #expect(try result.get().captions == [alone[i % jobs.count]], "job \(i % jobs.count) run together differs from alone")
        }
        let batched = captioner.loop.statistics.batchedSteps - before
        #expect(batched > 0, "no decode step served more than one job")
        print("measured: \(model): 12 jobs together, \(batched) batched decode steps")
    }

    /// One job with several prompts: one encode, and each prompt's candidates are what asking for
    /// that prompt alone gives, bit for bit.
    @Test func promptsInOneJobEqualPromptsOneByOne() throws {
        let captioner = try Captioner(folder: Fixtures.modelFolder("tiny-a"), configuration: .init(maxBatch: 4))
        let image = try Fixtures.imageBytes("chelsea_q95_444.jpg")
        let prompts = [Self.parameters(beams: 3, newTokens: 10), Self.parameters(beams: 3, newTokens: 10, prompt: "a picture of"),
                       Self.parameters(beams: 1, newTokens: 6, prompt: "a photo of")]
        let alone = try prompts.map { try captioner.caption(image: image, parameters: $0).candidates }
        let pieces = Recorder()
        captioner.loop.beforeEncodePiece = { _, piece in pieces.append(piece) }
        let result = try Self.run(captioner, [CaptionJob(image: image, prompts: prompts)])[0].get()
        #expect(result.captions == alone)
        #expect(pieces.values.filter { $0 == "embed" }.count == 1, "one encode serves every prompt")
    }

    /// A job that streams its text: greedy and sampled prompts hand out pieces that concatenate to
    /// their caption, exactly, before the completion; a beam-search prompt hands out none; and the
    /// captions equal those of the job without streaming.
    @Test func streamedTextConcatenatesToTheCaption() throws {
        let captioner = try Captioner(folder: Fixtures.modelFolder("tiny-a"), configuration: .init(maxBatch: 4))
        let image = try Fixtures.imageBytes("chelsea_q95_444.jpg")
        var sampled = Self.parameters(beams: 1, newTokens: 16)
        sampled.doSample = true
        sampled.seed = 7
        let prompts = [Self.parameters(beams: 1, newTokens: 16, prompt: "a picture of"), sampled, Self.parameters(beams: 3, newTokens: 8)]
        let plain = try Self.run(captioner, [CaptionJob(image: image, prompts: prompts)])[0].get()
        let pieces = Recorder()
        let completed = Recorder()
        let done = Completions(count: 1)
        var job = CaptionJob(image: image, prompts: prompts)
        job.onText = { prompt, piece in
            #expect(completed.values.isEmpty, "a piece came after the completion")
            pieces.append("\(prompt)\u{0}\(piece)")
        }
        _ = try captioner.submit(job) { completed.append("done"); done.set(0, $0) }
        let streamed = try done.waitForAll()[0].get()
        #expect(streamed.captions == plain.captions)
        let byPrompt = Dictionary(grouping: pieces.values.map { $0.split(separator: "\u{0}", maxSplits: 1, omittingEmptySubsequences: false) },
                                  by: { Int($0[0])! }).mapValues { $0.map { String($0[1]) } }
        for prompt in 0..<2 {
            let text = try #require(byPrompt[prompt], "prompt \(prompt) streamed nothing").joined()
            #expect(text == streamed.captions[prompt][0].text)
        }
        #expect(byPrompt[0]!.count > 2, "the greedy caption came in \(byPrompt[0]!.count) pieces")
        #expect(byPrompt[2] == nil, "beam search streamed text")
    }

    /// `load` counts a generating job as running and a job behind it as waiting (maxBatch 1), and
    /// both as nothing once they are done.
    @Test func loadCountsRunningAndWaitingJobs() throws {
        let captioner = try Captioner(folder: Fixtures.modelFolder("tiny-a"))
        let inStep = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        let once = Recorder()
        captioner.loop.beforeStep = { _ in
            if once.values.isEmpty { once.append("held"); inStep.signal(); release.wait() }
        }
        let image = try Fixtures.imageBytes("rocket.png")
        let done = Completions(count: 2)
        _ = try captioner.submit(CaptionJob(image: image, prompts: [Self.parameters(beams: 1, newTokens: 3)])) { done.set(0, $0) }
        inStep.wait()
        _ = try captioner.submit(CaptionJob(image: image, prompts: [Self.parameters(beams: 1, newTokens: 3)])) { done.set(1, $0) }
        let held = captioner.loop.load
        release.signal()
        _ = done.waitForAll()
        #expect(held.running == 1 && held.waiting == 1, "while the first job's step is held: \(held)")
        let idle = captioner.loop.load
        #expect(idle.running == 0 && idle.waiting == 0, "after both: \(idle)")
    }

    /// A job cancelled in the middle of its encode is answered CANCELLED before the next vision
    /// layer runs, and the loop goes on with other work.
    @Test func cancelDuringTheEncodeStopsWithinOneLayer() throws {
        let captioner = try Captioner(folder: Fixtures.modelFolder("tiny-d"))
        try #require(captioner.model.config.vision.numHiddenLayers >= 2)
        let pieces = Recorder()
        captioner.loop.beforeEncodePiece = { id, piece in
            pieces.append(piece)
            if piece == "layer 0" { captioner.cancel(CaptionJobHandle(id: id)) }
        }
        let done = Completions(count: 1)
        _ = try captioner.submit(CaptionJob(image: try Fixtures.imageBytes("rocket.png"),
                                                       prompts: [Self.parameters(beams: 1, newTokens: 4)])) { done.set(0, $0) }
        let result = done.waitForAll()[0]
        #expect(throws: CaptionJobError.cancelled) { try result.get() }
        #expect(pieces.values.contains("layer 0"))
        #expect(!pieces.values.contains("layer 1"), "the encode went on after the cancel: \(pieces.values)")
        captioner.loop.beforeEncodePiece = nil
        // The loop is free for the next caption.
        #expect(try captioner.caption(image: try Fixtures.imageBytes("rocket.png"), parameters: Self.parameters(beams: 1, newTokens: 3))
            .candidates.count == 1)
    }

    /// A cancel reaches an image decode that is running: a PNG that takes more than a second to
    /// decode is given up within a slice of rows, and the job ends CANCELLED (not after the decode,
    /// and not DEADLINE_EXCEEDED).
    @Test func aCancelStopsASlowImageDecodeWithinASliceOfRows() throws {
        let png = HostileImages.zeroPNG(width: 1, height: 40_000_000)
        // Uncancelled, the decode runs past a 1 s deadline: the cancel below (0.2 s in, answered
        // within 0.5 s) cannot be the decode finishing by itself.
        #expect(throws: ImageError.deadlineExceeded) {
            try ImageDecoder.decode(png, stopCheck: ImageStopCheck(deadline: .now + .seconds(1)))
        }
        let captioner = try Captioner(folder: Fixtures.modelFolder("tiny-a"))
        let decoding = DispatchSemaphore(value: 0)
        captioner.loop.beforeEncodePiece = { _, piece in if piece == "decode" { decoding.signal() } }
        let completedAt = Instants()
        let done = Completions(count: 1)
        let handle = try captioner.submit(CaptionJob(image: png, prompts: [Self.parameters(beams: 1, newTokens: 3)])) {
            completedAt.append(.now)
            done.set(0, $0)
        }
        decoding.wait()
        let decodeStart = ContinuousClock.now
        Thread.sleep(forTimeInterval: 0.2)
        let cancelledAt = ContinuousClock.now
        captioner.cancel(handle)
        let result = done.waitForAll()[0]
        let answered = try #require(completedAt.values.first) - cancelledAt
        #expect(throws: CaptionJobError.cancelled) { try result.get() }
        #expect(answered < .milliseconds(500), "the cancel waited for the decode: \(answered)")
        print("measured: cancel \(cancelledAt - decodeStart) into the decode answered in \(answered)")
        captioner.loop.beforeEncodePiece = nil
        // The loop is free for the next caption.
        #expect(try captioner.caption(image: try Fixtures.imageBytes("rocket.png"), parameters: Self.parameters(beams: 1, newTokens: 3))
            .candidates.count == 1)
    }

    /// `submit` does not read the image (it may run on the daemon's event loop): the feature-cache
    /// key, a SHA-256 of up to 32 MiB, is hashed in the job's look-up piece, on the loop's thread,
    /// after `submit` has returned.
    @Test func theCacheKeyIsHashedInTheLookUpPieceNotBySubmit() throws {
        let captioner = try Captioner(folder: Fixtures.modelFolder("tiny-a"), configuration: .init(featureCacheBytes: 1 << 20))
        let cache = try #require(captioner.featureCache)
        let events = Recorder(), threads = Recorder()
        let returned = DispatchSemaphore(value: 0)
        captioner.loop.beforeEncodePiece = { _, piece in
            if piece == "lookup" {
                returned.wait()  // the order below is then the work's, not a race's
                threads.append("\(pthread_self())")
            }
            events.append(piece)
        }
        captioner.loop.afterCacheKey = { _ in
            events.append("key")
            threads.append("\(pthread_self())")
        }
        let image = [UInt8](repeating: 0x5A, count: 32 << 20)  // the largest image the daemon takes
        let done = Completions(count: 1)
        _ = try captioner.submit(CaptionJob(image: image, prompts: [Self.parameters(beams: 1, newTokens: 3)])) { done.set(0, $0) }
        events.append("submit returned")
        let submitter = "\(pthread_self())"
        returned.signal()
        let result = done.waitForAll()[0]
        #expect(throws: ImageError.unknownFormat) { try result.get() }
        #expect(events.values == ["submit returned", "lookup", "key", "decode"])
        let (lookUp, key) = (threads.values.first, threads.values.last)
        #expect(threads.values.count == 2 && key == lookUp && key != submitter, "hashed on the loop's thread")
        let stats = cache.statistics
        #expect(stats.misses == 1 && stats.hits == 0, "the look-up used the key: \(stats)")
    }

    /// A job whose deadline passes mid-generation ends DEADLINE_EXCEEDED.
    @Test func aDeadlineEndsTheJobWhereverItIs() throws {
        let captioner = try Captioner(folder: Fixtures.modelFolder("tiny-a"))
        let holding = DispatchSemaphore(value: 0)
        captioner.loop.beforeStep = { _ in _ = holding.wait(timeout: .now() + 0.3) }
        let job = CaptionJob(image: try Fixtures.imageBytes("rocket.png"), prompts: [Self.parameters(beams: 1, newTokens: 20)],
                             deadline: .now + .milliseconds(100))
        let result = try Self.run(captioner, [job])[0]
        #expect(throws: CaptionJobError.deadlineExceeded) { try result.get() }
    }

    /// With `maxBatch` 2, a step that hangs while a second job waits stops the progress stamp: the
    /// watchdog must not be fed by waiting. It moves again once the step returns.
    @Test func aWedgedStepStopsTheProgressStampWhileAnotherJobWaits() throws {
        let captioner = try Captioner(folder: Fixtures.modelFolder("tiny-a"), configuration: .init(maxBatch: 2))
        let loop = captioner.loop
        let wedged = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        let once = Recorder()
        loop.beforeStep = { _ in
            if once.values.isEmpty {
                once.append("wedged")
                wedged.signal()
                release.wait()
            }
        }
        let image = try Fixtures.imageBytes("rocket.png")
        let done = Completions(count: 2)
        _ = try captioner.submit(CaptionJob(image: image, prompts: [Self.parameters(beams: 1, newTokens: 4)])) { done.set(0, $0) }
        wedged.wait()
        _ = try captioner.submit(CaptionJob(image: image, prompts: [Self.parameters(beams: 1, newTokens: 4)])) { done.set(1, $0) }
        Thread.sleep(forTimeInterval: 0.4)
        #expect(!loop.isMakingProgress(within: .milliseconds(300)), "a hung step with a job waiting still looked alive")
        release.signal()
        let results = done.waitForAll()
        for r in results { _ = try r.get() }
        #expect(loop.isMakingProgress(within: .milliseconds(300)))
    }

    /// A cache hit skips the encode and gives exactly the miss's captions; another EXIF setting
    /// is another key; the byte bound holds; a new captioner (a reload) starts empty.
    @Test func theFeatureCacheAnswersOnlyForTheSameImageAndStaysBounded() throws {
        let folder = Fixtures.modelFolder("tiny-a")
        let probe = try Captioner(folder: folder)
        let vc = probe.model.config.vision
        let entryBytes = vc.tokenCount * vc.hiddenSize * 4
        let captioner = try Captioner(folder: folder, configuration: .init(featureCacheBytes: entryBytes * 3 / 2))
        let cache = try #require(captioner.featureCache)
        let image = try Fixtures.imageBytes("exif_orientation6.jpg")
        let p = Self.parameters(beams: 3, newTokens: 8)
        let miss = try captioner.caption(image: image, parameters: p)
        let hit = try captioner.caption(image: image, parameters: p)
        #expect(!miss.timings.featureCacheHit && hit.timings.featureCacheHit)
        #expect(hit.candidates == miss.candidates, "a cache hit differs from the miss")
        #expect(hit.timings.vision == 0)
        let upright = try captioner.caption(image: image, parameters: p, applyEXIFOrientation: false)
        #expect(!upright.timings.featureCacheHit, "another EXIF setting must not hit")
        #expect(upright.candidates == (try probe.caption(image: image, parameters: p, applyEXIFOrientation: false)).candidates)
        let stats = cache.statistics
        #expect(stats.entries == 1 && stats.bytes <= stats.capacityBytes, "bound: \(stats)")
        #expect(stats.hits == 1 && stats.misses == 2)
        // A reload builds a new captioner: nothing carries over.
        let reloaded = try Captioner(folder: folder, configuration: .init(featureCacheBytes: entryBytes * 3 / 2))
        #expect(!(try reloaded.caption(image: image, parameters: p)).timings.featureCacheHit)
    }

    @Test func finishReasonsTellEOSFromTheLengthLimit() throws {
        let captioner = try Captioner(folder: Fixtures.modelFolder("tiny-a"))
        let sep = captioner.model.config.text.sepTokenID
        for name in Self.images {
            for p in [Self.parameters(beams: 1, newTokens: 20), Self.parameters(beams: 3, newTokens: 3, returns: 3)] {
                for c in try captioner.caption(image: try Fixtures.imageBytes(name), parameters: p).candidates {
                    #expect(c.finishReason == (c.tokenIDs.last == sep ? .eos : .length), "\(name): \(c.tokenIDs)")
                }
            }
        }
    }
}

/// Completions written by the loop's thread, waited for by the test.
final class Completions: @unchecked Sendable {
    private let condition = NSCondition()
    private var values: [Result<CaptionJobResult, any Error>?]
    init(count: Int) { values = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ value: Result<CaptionJobResult, any Error>) {
        condition.withLock { values[i] = value; condition.broadcast() }
    }
    func waitForAll() -> [Result<CaptionJobResult, any Error>] {
        condition.withLock {
            while values.contains(where: { $0 == nil }) { condition.wait() }
            return values.map { $0! }
        }
    }
}

/// Instants recorded from completions.
final class Instants: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [ContinuousClock.Instant] = []
    func append(_ instant: ContinuousClock.Instant) { lock.withLock { stored.append(instant) } }
    var values: [ContinuousClock.Instant] { lock.withLock { stored } }
}

/// Strings recorded from the loop's hooks.
final class Recorder: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [String] = []
    func append(_ s: String) { lock.withLock { stored.append(s) } }
    var values: [String] { lock.withLock { stored } }
}
