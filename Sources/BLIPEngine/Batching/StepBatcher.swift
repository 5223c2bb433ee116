import Foundation

/// Lets concurrent captions share the cores: image encodes run one at a time, and the decode steps
/// of every caption that is generating run together as one step, so each decoder weight is read
/// from memory once per step for all of them (a decode step is bound by that read: a beam-3 step
/// of one caption and a step of four such captions cost nearly the same).
///
/// Order of work, under one lock:
/// - an encode (vision encoder + cross-attention keys/values: compute-bound, every core) waits for
///   the step or encode in progress, and has priority over the next step, so a newly arrived caption
///   joins the decoding ones as soon as possible; at most as many encodes can go first as there are
///   captions running (the daemon's `--max-batch`), which bounds how long a generating caption waits;
/// - a step runs when every generating caption has asked for its next one (they ask within
///   microseconds: between steps a caption only selects tokens), led by the last caller to arrive,
///   which runs the step for all of them while the others wait.
///
/// A caption alone goes straight through: its step runs on its own session, as without the batcher.
///
/// Waiting is interruptible: a caption waiting for its turn to encode, or for its step to be taken
/// into a batch, calls its checkpoint every ``checkpointInterval``, so a deadline or cancellation
/// ends the wait within that time instead of after the other captions' encodes. A step already
/// taken into a running batch is waited for (it ends within one step).
public final class StepBatcher: @unchecked Sendable {
    // @unchecked: every field below is guarded by `lock`; a step's sessions and the shared scratch
    // are touched only by the leader, while their owners wait.
    private let decoder: TextDecoder
    private let lock = NSCondition()
    private var generating = 0
    private var encodesWaiting = 0
    private var encoding = false
    private var stepping = false
    private var pending: [Request] = []
    private var shared: DecoderScratch?

    private var batchedSteps = 0
    private var batchedCaptions = 0

    /// Steps run so far with more than one caption in them, and the captions those steps served.
    public var batchedStatistics: (steps: Int, captions: Int) {
        lock.lock()
        defer { lock.unlock() }
        return (batchedSteps, batchedCaptions)
    }

    /// How often a waiting caption calls its checkpoint.
    static let checkpointInterval: TimeInterval = 0.05

    private final class Request {
        let session: DecoderSession
        let tokens: [Int32]
        var taken = false
        var done = false
        init(session: DecoderSession, tokens: [Int32]) { (self.session, self.tokens) = (session, tokens) }
    }

    init(decoder: TextDecoder) {
        self.decoder = decoder
    }

    /// Runs `body` (an image encode) exclusively, before any further decode step. While it waits for
    /// its turn, `checkpoint` is called every ``checkpointInterval``; what it throws ends the wait.
    func encode<T>(checkpoint: () throws -> Void = {}, _ body: () throws -> T) throws -> T {
        lock.lock()
        encodesWaiting += 1
        while encoding || stepping {
            if !lock.wait(until: Date(timeIntervalSinceNow: Self.checkpointInterval)) {
                do {
                    try checkpoint()
                } catch {
                    encodesWaiting -= 1
                    lock.broadcast()
                    lock.unlock()
                    throw error
                }
            }
        }
        encodesWaiting -= 1
        encoding = true
        lock.unlock()
        defer {
            lock.lock()
            encoding = false
            lock.broadcast()
            lock.unlock()
        }
        return try body()
    }

    /// A caption starts generating: from now on steps wait for its requests too.
    func join() {
        lock.lock()
        generating += 1
        lock.unlock()
    }

    /// The caption stopped generating (finished, failed or was abandoned at a checkpoint).
    func leave() {
        lock.lock()
        generating -= 1
        lock.broadcast()
        lock.unlock()
    }

    /// One step of `session` (which must have joined), run together with the other generating
    /// captions' steps. Returns the session's logits, valid until its next step. While the step waits
    /// to be taken into a batch, `checkpoint` is called every ``checkpointInterval``; what it throws
    /// withdraws the step and ends the wait.
    func step(_ session: DecoderSession, _ tokens: [Int32], checkpoint: () throws -> Void = {}) throws -> UnsafeBufferPointer<Float> {
        try session.checkStep(tokens)
        let request = Request(session: session, tokens: tokens)
        lock.lock()
        pending.append(request)
        lock.broadcast()
        while !request.done {
            if !stepping && !encoding && encodesWaiting == 0 && pending.count >= generating {
                let batch = takeBatch()
                stepping = true
                if batch.count > 1 {
                    batchedSteps += 1
                    batchedCaptions += batch.count
                }
                lock.unlock()
                run(batch)
                lock.lock()
                for r in batch { r.done = true }
                stepping = false
                lock.broadcast()
            } else if !lock.wait(until: Date(timeIntervalSinceNow: Self.checkpointInterval)) && !request.taken {
                do {
                    try checkpoint()
                } catch {
                    pending.removeAll { $0 === request }
                    lock.broadcast()
                    lock.unlock()
                    throw error
                }
            }
        }
        lock.unlock()
        return session.logits
    }

    /// The oldest pending requests whose rows fit one step (``batchLength(_:)``), marked taken; the
    /// requests left wait for the next step. With `lock` held.
    private func takeBatch() -> [Request] {
        let count = Self.batchLength(pending)
        let batch = Array(pending.prefix(count))
        pending.removeFirst(count)
        for r in batch { r.taken = true }
        return batch
    }

    /// How many of `requests`, from the first, one step takes: as many as fit `Linear.skinnyRows`
    /// rows together, at least one. Beyond that a product would switch to sgemm, whose results differ
    /// in the last bits, and a caption's logits would depend on what it was batched with.
    private static func batchLength(_ requests: [Request]) -> Int {
        var rows = 0, count = 0
        for r in requests {
            if count > 0 && rows + r.session.rows > Linear.skinnyRows { break }
            rows += r.session.rows
            count += 1
        }
        return count
    }

    /// One step of several sessions together, now (each session's logits in the session, as after
    /// its own `step`; in turns when their rows exceed one step's): what concurrent captions get,
    /// for measuring and testing it. Waits for any encode or
    /// step in progress.
    public func stepTogether(_ sessions: [DecoderSession], tokens: [[Int32]]) throws(DecoderSessionError) {
        precondition(sessions.count == tokens.count && Set(sessions.map(ObjectIdentifier.init)).count == sessions.count)
        for (s, t) in zip(sessions, tokens) { try s.checkStep(t) }
        lock.lock()
        while encoding || stepping { lock.wait() }
        stepping = true
        lock.unlock()
        var requests = zip(sessions, tokens).map { Request(session: $0, tokens: $1) }
        while !requests.isEmpty {  // in turns of at most one step's rows, as concurrent captions go
            let count = Self.batchLength(requests)
            run(Array(requests.prefix(count)))
            requests.removeFirst(count)
        }
        lock.lock()
        stepping = false
        lock.broadcast()
        lock.unlock()
    }

    /// Runs one step for every request: alone on the session's own scratch, together on the shared
    /// scratch (grown to the largest batch seen), with the logits copied back to each session.
    private func run(_ batch: [Request]) {
        if batch.count == 1, let only = batch.first {
            decoder.forward(DecoderStep(parts: [.init(session: only.session, firstRow: 0, tokens: only.tokens)],
                                        rows: only.session.rows, scratch: only.session.scratch))
            return
        }
        var parts: [DecoderStep.Part] = []
        parts.reserveCapacity(batch.count)
        var rows = 0, span = 0
        for r in batch {
            parts.append(.init(session: r.session, firstRow: rows, tokens: r.tokens))
            rows += r.session.rows
            span = max(span, r.session.span)
        }
        let scratch: DecoderScratch
        if let shared, shared.capacityRows >= rows, shared.capacitySpan >= span {
            scratch = shared
        } else {
            scratch = DecoderScratch(config: decoder.config, rows: max(rows, shared?.capacityRows ?? 0),
                                     span: max(span, shared?.capacitySpan ?? 0))
            shared = scratch
        }
        decoder.forward(DecoderStep(parts: parts, rows: rows, scratch: scratch))
        let vocab = decoder.config.vocabSize
        for part in parts {
            part.session.scratch.logits.update(from: scratch.logits + part.firstRow * vocab, count: part.session.rows * vocab)
        }
    }
}

/// A session's steps routed through a ``StepBatcher``: what the generator drives when several
/// captions may be decoding at once.
final class BatchedStepper: TokenStepper {
    let session: DecoderSession
    let batcher: StepBatcher
    let checkpoint: () throws -> Void

    /// - Parameter checkpoint: called while a step waits for the other captions (see ``StepBatcher``).
    init(session: DecoderSession, batcher: StepBatcher, checkpoint: @escaping () throws -> Void = {}) {
        (self.session, self.batcher, self.checkpoint) = (session, batcher, checkpoint)
    }

    var vocabularySize: Int { session.vocabularySize }

    func step(_ tokens: [Int32]) throws -> UnsafeBufferPointer<Float> {
        try batcher.step(session, tokens, checkpoint: checkpoint)
    }

    func reorder(_ sources: [Int]) { session.reorder(sources) }
}
