import Foundation

/// The one owner of everything the model runs: every caption of every caller goes through here,
/// one iteration at a time, on the loop's own thread (the shape of llama.cpp's server loop).
///
/// Each iteration
/// 1. takes in new jobs and cancellations, and retires jobs that were cancelled or whose deadline
///    passed (wherever they are: waiting, encoding or generating);
/// 2. admits waiting jobs while their prompts fit `maxBatch` (a job alone always runs);
/// 3. runs one bounded piece of encode work for the oldest encoding jobs — a feature-cache look-up
///    (which hashes the image here, not on the submitter's thread),
///    the image decode, the EXIF rotation, the resize, the normalisation, the patch embedding,
///    *one* vision layer, or the post-layernorm
///    and cross-attention projection — side by side in lanes when several images wait
///    (``Configuration/encodeLanes``), each lane with its share of the threads;
/// 4. runs one decoder step for every generating prompt together (`BatchedStep`: chunks of at most
///    `Linear.skinnyRows` rows, so every caption is bit-identical to a caption alone), and hands
///    each search its logits; finished prompts retire and a job whose prompts are all done completes;
/// 5. stamps the time. The stamp only moves when an iteration finishes, so a step or layer that
///    hangs stops it, and nothing that waits counts as progress (``isMakingProgress(within:)``).
///
/// So a cancelled or expired job frees the CPU within one piece of encode work (one vision layer)
/// or one decode step — within a slice of rows while its image is decoded or resized, where
/// one piece can take seconds (``ImageStopCheck``) — and concurrent prompts share each weight read.
///
/// Completion callbacks run on the loop's thread, exactly once per submitted job: keep them short
/// (hand the result to another queue).
public final class DecodeLoop: @unchecked Sendable {
    // @unchecked: `shared` is guarded by `lock`; everything under "Loop-owned" is touched only by
    // the loop's thread.

    public struct Configuration: Sendable, Equatable {
        /// Prompts decoding or encoding at once (the daemon's `--max-batch`); more wait, in order.
        public var maxBatch: Int
        /// Images encoded side by side at most; `nil` chooses (one per engine thread, so each lane
        /// runs single-threaded: on this project's 2-core benchmark machine two 1-thread encodes took
        /// 3.0 s per image against 3.4 s one at a time on 2 threads).
        public var encodeLanes: Int?
        /// Engine threads (`BLIP_THREADS`, else every CPU of the affinity mask).
        public var threads: Int

        public init(maxBatch: Int = 1, encodeLanes: Int? = nil, threads: Int? = nil) {
            self.maxBatch = max(1, maxBatch)
            self.encodeLanes = encodeLanes.map { max(1, $0) }
            self.threads = max(1, threads ?? Parallel.available)
        }

        /// The most lanes the loop will use.
        public var maxLanes: Int { min(encodeLanes ?? threads, threads) }

        /// Lanes and threads per lane for `waiting` images ready to encode.
        public func lanes(forEncoding waiting: Int) -> (lanes: Int, threadsPerLane: Int) {
            let lanes = max(1, min(maxLanes, waiting))
            return (lanes, max(1, threads / lanes))
        }
    }

    /// Counters since the loop was made.
    public struct Statistics: Sendable, Equatable {
        /// Iterations that did work.
        public var iterations: UInt64 = 0
        /// Decoder steps (chunks) that served more than one prompt.
        public var batchedSteps: UInt64 = 0
    }

    public let configuration: Configuration
    let engine: Engine

    /// What the loop computes with: the model and the pieces around it.
    struct Engine {
        let model: BlipModel
        let tokenizer: WordPieceTokenizer
        let normalizer: ImageNormalizer
        let imageLimits: ImageLimits
        let cache: FeatureCache?
        /// Preprocessing config and model identity: the fixed part of every cache key.
        let cacheContext: String
    }

    /// A prompt checked by the submitter: its parameters, the longest its sequence can get
    /// (prefix included), and its search, fresh (advanced only by the loop's thread).
    struct PreparedPrompt: @unchecked Sendable {
        // @unchecked: the search is handed to the loop's thread under `lock` and used only there.
        let parameters: GenerationParameters
        /// `[DEC]` and the prompt's tokens.
        let prefixLength: Int
        let maxLength: Int
        let search: any DecodingSearch
    }

    // MARK: Shared with submitters (under `lock`)

    private struct Shared {
        var inbox: [Job] = []
        var cancellations: [(UInt64, CaptionJobError)] = []
        /// The cancellation flag of every job submitted and not yet completed, so that `cancel`
        /// reaches an image decode that is running now (the queue above is read between pieces).
        var cancellationFlags: [UInt64: CancellationFlag] = [:]
        var nextID: UInt64 = 1
        var running = false
        /// Jobs submitted and not yet completed.
        var outstanding = 0
        /// When the last iteration finished, or work arrived at an idle loop.
        var lastProgress = ContinuousClock.now
        var statistics = Statistics()
        /// Jobs taken in and not yet started, and jobs encoding or generating, as of the last iteration.
        var queuedJobs = 0
        var activeJobs = 0
    }
    private let lock = NSCondition()
    private var shared = Shared()

    /// How long the loop's thread lingers without work before it ends (a new job starts another).
    private static let idleLinger: Duration = .seconds(2)

    /// Called just before every decoder step with the number of prompts in it: lets a test hold a
    /// step to play a hung engine.
    nonisolated(unsafe) var beforeStep: (@Sendable (Int) -> Void)?
    /// Called just before every piece of encode work with the job's id and the piece ("lookup",
    /// "decode", "resize", "normalize", "embed", "layer N", "finish", "project"): lets a
    /// test act mid-encode.
    nonisolated(unsafe) var beforeEncodePiece: (@Sendable (UInt64, String) -> Void)?
    /// Called on the thread that just hashed a job's image for the feature cache, with the job's id:
    /// lets a test see that the hash is made in the look-up piece, not by the submitter.
    nonisolated(unsafe) var afterCacheKey: (@Sendable (UInt64) -> Void)?

    init(engine: Engine, configuration: Configuration) {
        self.engine = engine
        self.configuration = configuration
    }

    // MARK: Submitting

    /// Queues a job. `completion` is called once, on the loop's thread, with the captions or the
    /// reason there are none (`ImageError`, `CaptionJobError`, `DecoderSessionError`).
    ///
    /// Cheap, whatever the image: the submitter may be an event loop. Nothing here reads the
    /// image's bytes (the feature-cache key is hashed in the job's look-up, on the loop's thread).
    func submit(image: [UInt8], format: ImageFormat?, applyEXIFOrientation: Bool, prompts: [PreparedPrompt],
                deadline: ContinuousClock.Instant?, onText: (@Sendable (Int, String) -> Void)? = nil,
                completion: @escaping @Sendable (Result<CaptionJobResult, any Error>) -> Void) -> CaptionJobHandle {
        lock.lock()
        defer { lock.unlock() }
        let id = shared.nextID
        shared.nextID += 1
        let job = Job(id: id, image: image, format: format, applyEXIFOrientation: applyEXIFOrientation, prompts: prompts,
                      deadline: deadline, onText: onText, completion: completion)
        if shared.outstanding == 0 { shared.lastProgress = .now }  // idle until now: not stalled
        shared.outstanding += 1
        shared.cancellationFlags[id] = job.cancellation
        shared.inbox.append(job)
        if !shared.running {
            shared.running = true
            let thread = Thread { [self] in run() }
            thread.name = "engine-loop"
            thread.stackSize = 8 << 20
            thread.start()
        } else {
            lock.signal()
        }
        return CaptionJobHandle(id: id)
    }

    /// Ends the job: its completion gets ``CaptionJobError/cancelled`` within one piece of encode
    /// work or one decoder step, or within a slice of rows of an image decode or resize that is
    /// running now. Unknown or finished jobs are ignored.
    public func cancel(_ handle: CaptionJobHandle) {
        lock.lock()
        // The flag stops image work in flight, from this thread; the queue ends the job wherever
        // else it is, at the loop's next iteration.
        shared.cancellationFlags[handle.id]?.raise()
        shared.cancellations.append((handle.id, .cancelled))
        lock.signal()
        lock.unlock()
    }

    // MARK: Liveness

    /// Whether the loop is healthy: it has no work, or an iteration finished within `window`.
    /// Only finished iterations move the stamp, so waiting never counts.
    public func isMakingProgress(within window: Duration, now: ContinuousClock.Instant = .now) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        return shared.outstanding == 0 || now - shared.lastProgress < window
    }

    /// Jobs submitted and not yet completed.
    public var outstanding: Int {
        lock.lock()
        defer { lock.unlock() }
        return shared.outstanding
    }

    /// Jobs waiting to start (submitted, not yet admitted) and jobs encoding or generating now.
    public var load: (waiting: Int, running: Int) {
        lock.lock()
        defer { lock.unlock() }
        return (shared.inbox.count + shared.queuedJobs, shared.activeJobs)
    }

    public var statistics: Statistics {
        lock.lock()
        defer { lock.unlock() }
        return shared.statistics
    }

    // MARK: Loop-owned

    private var waiting: [Job] = []
    private var encoding: [Job] = []
    private var generating: [Slot] = []
    /// Jobs that started generating and have not completed (their prompts are among `generating`).
    private var generatingJobs = 0
    private var visionStates: [VisionState] = []
    private lazy var batchedStep = BatchedStep(decoder: engine.model.text)
    private let clock = ContinuousClock()

    private func run() {
        while takeWork() {
            let now = clock.now
            retireExpired(at: now)
            admit()
            encodeStep()
            let batched = decodeStep()
            lock.lock()
            shared.lastProgress = .now
            publishLoad()
            shared.statistics.iterations += 1
            shared.statistics.batchedSteps += UInt64(batched)
            lock.unlock()
        }
    }

    /// Moves new jobs and cancellations in; waits while there is nothing to do. Returns false
    /// when the thread should end (idle for ``idleLinger``).
    private func takeWork() -> Bool {
        lock.lock()
        var lingerStart = clock.now
        while shared.inbox.isEmpty && shared.cancellations.isEmpty && waiting.isEmpty && encoding.isEmpty && generating.isEmpty {
            if clock.now - lingerStart >= Self.idleLinger {
                shared.running = false
                lock.unlock()
                return false
            }
            if !lock.wait(until: Date(timeIntervalSinceNow: 0.5)) { continue }
            lingerStart = clock.now
        }
        let inbox = shared.inbox
        let cancellations = shared.cancellations
        shared.inbox.removeAll()
        shared.cancellations.removeAll()
        lock.unlock()
        waiting.append(contentsOf: inbox)
        for (id, reason) in cancellations { fail(jobWithID: id, reason) }
        return true
    }

    private func retireExpired(at now: ContinuousClock.Instant) {
        let expired = (waiting + encoding).filter { $0.deadline.map { now >= $0 } ?? false }
            + generating.map(\.job).filter { $0.deadline.map { now >= $0 } ?? false }
        for job in expired { fail(jobWithID: job.id, CaptionJobError.deadlineExceeded) }
    }

    /// Starts waiting jobs while their prompts fit `maxBatch` (one job always, if none runs).
    private func admit() {
        var active = encoding.reduce(0) { $0 + $1.prompts.count } + generating.count
        while let next = waiting.first, active == 0 || active + next.prompts.count <= configuration.maxBatch {
            waiting.removeFirst()
            encoding.append(next)
            active += next.prompts.count
        }
    }

    /// One piece of encode work for each of the oldest encoding jobs (as many as there are lanes).
    private func encodeStep() {
        guard !encoding.isEmpty else { return }
        let (lanes, threadsPerLane) = configuration.lanes(forEncoding: encoding.count)
        let jobs = Array(encoding.prefix(lanes))
        for job in jobs where job.stage.needsVisionState && job.vision == nil {
            job.vision = visionStates.popLast() ?? VisionState(config: engine.model.config.vision)
        }
        if let hook = beforeEncodePiece {
            for job in jobs { hook(job.id, job.stage.name) }
        }
        let afterCacheKey = afterCacheKey
        if jobs.count == 1 {
            jobs[0].advanceEncode(engine: engine, clock: clock, afterCacheKey: afterCacheKey)
        } else {
            let box = UncheckedSendable((jobs, engine, clock))
            DispatchQueue.concurrentPerform(iterations: jobs.count) { i in
                let (jobs, engine, clock) = box.value
                Parallel.withWorkers(threadsPerLane) { jobs[i].advanceEncode(engine: engine, clock: clock, afterCacheKey: afterCacheKey) }
            }
        }
        for job in jobs {
            if let vision = job.vision, !job.stage.needsVisionState {
                visionStates.append(vision)
                job.vision = nil
            }
            if let error = job.failure {
                fail(jobWithID: job.id, error)
            } else if case .ready(let memory) = job.stage {
                startGenerating(job, memory: memory)
            }
        }
    }

    private func startGenerating(_ job: Job, memory: ImageMemory) {
        encoding.removeAll { $0 === job }
        job.textStart = clock.now
        generatingJobs += 1
        for (index, prompt) in job.prompts.enumerated() {
            let session = engine.model.makeSession(memory: memory, maxRows: max(prompt.parameters.numBeams, 1),
                                                   maxLength: prompt.maxLength)
            let slot = Slot(job: job, index: index, session: session, search: prompt.search, next: prompt.search.start())
            if job.onText != nil && prompt.parameters.streamsText { slot.text = CaptionTextStream(tokenizer: engine.tokenizer) }
            slot.streamStep()
            generating.append(slot)
        }
    }

    /// One decoder step for every generating prompt; returns the chunks that held several.
    private func decodeStep() -> Int {
        var sessions: [DecoderSession] = [], tokens: [[Int32]] = [], stepping: [Slot] = []
        for slot in generating {
            guard case .step(let t, let reorder) = slot.next else { continue }
            if let reorder { slot.session.reorder(reorder) }
            do {
                try slot.session.checkStep(t)
            } catch {
                fail(jobWithID: slot.job.id, error)
                continue
            }
            sessions.append(slot.session)
            tokens.append(t)
            stepping.append(slot)
        }
        guard !sessions.isEmpty else { return 0 }
        beforeStep?(sessions.count)
        let batched = batchedStep.run(sessions, tokens: tokens)
        for slot in stepping where !slot.job.isFinished {
            slot.next = slot.search.advance(slot.session.logits)
            if case .done(let candidates) = slot.next { finish(slot, candidates) } else { slot.streamStep() }
        }
        return batched
    }

    private func finish(_ slot: Slot, _ candidates: [Candidate]) {
        generating.removeAll { $0 === slot }
        let job = slot.job
        let prefixLength = job.prompts[slot.index].prefixLength
        let captions = candidates.map {
            CaptionCandidate(text: engine.tokenizer.decode($0.tokenIDs), tokenIDs: $0.tokenIDs, score: $0.score,
                             finishReason: $0.finishReason, generatedTokens: $0.tokenIDs.count - prefixLength)
        }
        job.captions[slot.index] = captions
        if var text = slot.text, let caption = captions.first {
            let rest = text.finish(caption.text)
            if !rest.isEmpty { job.onText?(slot.index, rest) }
        }
        guard job.captions.allSatisfy({ $0 != nil }) else { return }
        job.timings.text = (clock.now - (job.textStart ?? clock.now)).seconds
        complete(job, .success(CaptionJobResult(captions: job.captions.map { $0! }, timings: job.timings)))
    }

    /// Ends job `id` with `error` wherever it is; ignored when it is not in the loop (finished).
    private func fail(jobWithID id: UInt64, _ error: any Error) {
        guard let job = waiting.first(where: { $0.id == id }) ?? encoding.first(where: { $0.id == id })
                ?? generating.first(where: { $0.job.id == id })?.job else { return }
        waiting.removeAll { $0 === job }
        encoding.removeAll { $0 === job }
        generating.removeAll { $0.job === job }
        if let vision = job.vision {
            visionStates.append(vision)
            job.vision = nil
        }
        complete(job, .failure(error))
    }

    private func complete(_ job: Job, _ result: Result<CaptionJobResult, any Error>) {
        job.isFinished = true
        if job.textStart != nil { generatingJobs -= 1 }
        // The counts first: whoever the completion wakes sees this job gone from `load`.
        lock.lock()
        publishLoad()
        lock.unlock()
        job.completion(result)
        lock.lock()
        shared.outstanding -= 1
        shared.cancellationFlags[job.id] = nil
        lock.unlock()
    }

    /// Copies the loop's queue lengths for ``load``; under `lock`.
    private func publishLoad() {
        shared.queuedJobs = waiting.count
        shared.activeJobs = encoding.count + generatingJobs
    }
}

/// One prompt of a job while it generates: its decoder rows and its search.
private final class Slot {
    let job: DecodeLoop.Job
    let index: Int
    let session: DecoderSession
    let search: any DecodingSearch
    var next: SearchStep
    /// The caption's text so far, when the job streams it and this prompt's search can.
    var text: CaptionTextStream?

    init(job: DecodeLoop.Job, index: Int, session: DecoderSession, search: any DecodingSearch, next: SearchStep) {
        (self.job, self.index, self.session, self.search, self.next) = (job, index, session, search, next)
    }

    /// Hands the token of the step asked for next to the text stream, and its final text to the job.
    func streamStep() {
        guard text != nil, case .step(let tokens, _) = next, tokens.count == 1,
              let piece = text!.append(tokens[0]) else { return }
        job.onText?(index, piece)
    }
}
