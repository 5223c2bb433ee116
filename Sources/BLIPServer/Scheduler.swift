import BLIPProtocol
import Foundation

/// The bounded FIFO queue of Caption calls and the one inference worker that runs them.
///
/// One worker, because the engine already uses every core through OpenBLAS: two captions at
/// once would only fight over them. The queue bounds memory and latency; when it is full a
/// call is refused at once instead of waiting unboundedly.
final class Scheduler: @unchecked Sendable {
    // Guarded by `condition`.
    private let condition = NSCondition()
    private var queue: [Call] = []
    private var running: Call?
    private var accepting = true
    private var stopped = false
    private var lastProgress = ContinuousClock.now

    /// Calls waiting or running at once.
    let capacity: Int
    /// The service new calls run on; replaced by a reload while a call may be running on the
    /// previous one.
    private let currentService: LockedState<any CaptionService>

    init(service: any CaptionService, capacity: Int) {
        self.currentService = LockedState(service)
        self.capacity = max(capacity, 1)
    }

    /// The service the next call will run on.
    var service: any CaptionService { currentService.withLock { $0 } }

    /// Runs later calls on `service`; a call already running finishes on the old one.
    func replaceService(_ service: any CaptionService) {
        currentService.withLock { $0 = service }
    }

    /// Queues `call`, or says why not (`RESOURCE_EXHAUSTED`, `UNAVAILABLE`).
    func submit(_ call: Call) -> RPCError? {
        condition.lock()
        defer { condition.unlock() }
        guard accepting else {
            return RPCError(code: .unavailable, message: "the server is shutting down; retry on a new connection")
        }
        guard lockedDepth < capacity else {
            return RPCError(code: .resourceExhausted, message: "the caption queue is full (\(capacity) calls waiting or running); retry later")
        }
        queue.append(call)
        condition.broadcast()
        return nil
    }

    /// Takes `call` out of the queue if it is still waiting there; `false` when it is running
    /// or done.
    func remove(_ call: Call) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard let index = queue.firstIndex(where: { $0 === call }) else { return false }
        queue.remove(at: index)
        condition.broadcast()
        return true
    }

    /// Removes and returns the queued calls whose deadline has passed (they never run).
    func expireQueued(at now: ContinuousClock.Instant) -> [Call] {
        condition.lock()
        defer { condition.unlock() }
        var expired: [Call] = []
        queue.removeAll { call in
            guard let deadline = call.deadline, now >= deadline else { return false }
            expired.append(call)
            return true
        }
        if !expired.isEmpty { condition.broadcast() }
        return expired
    }

    /// Calls waiting or running now. A running call whose response is decided no longer
    /// counts, so a client that has read every response sees depth 0.
    var depth: Int {
        condition.lock()
        defer { condition.unlock() }
        return lockedDepth
    }

    /// ``depth``, with `condition` held.
    private var lockedDepth: Int {
        queue.count + (running.map { $0.isFinished ? 0 : 1 } ?? 0)
    }

    /// Whether the worker is healthy: idle, or its running call reached a checkpoint (or
    /// started) within `window`. A caption stuck in one step longer than that is not.
    func isMakingProgress(within window: Duration, now: ContinuousClock.Instant = .now) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        return running == nil || now - lastProgress < window
    }

    private func noteProgress() {
        condition.lock()
        lastProgress = .now
        condition.unlock()
    }

    /// Refuses new calls from now on (shutdown has begun).
    func stopAccepting() {
        condition.lock()
        accepting = false
        condition.unlock()
    }

    /// Waits until no call is waiting or running, or `deadline`; `true` when idle.
    func waitUntilIdle(before deadline: ContinuousClock.Instant) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while !queue.isEmpty || running != nil {
            let left = deadline - .now
            guard left > .zero else { return false }
            _ = condition.wait(until: Date(timeIntervalSinceNow: min(Double(left.microseconds) / 1e6, 0.1)))
        }
        return true
    }

    /// Empties the queue and returns its calls plus the running one (which is asked to stop
    /// with `reason`), so the caller can answer them all.
    func abandonAll(_ reason: RPCError) -> [Call] {
        condition.lock()
        defer { condition.unlock() }
        var calls = queue
        queue.removeAll()
        if let running {
            running.stop(reason)
            calls.append(running)
        }
        return calls
    }

    /// Lets the worker thread end once the queue is empty.
    func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    /// The worker: runs queued calls one at a time, in order, until ``stop()``.
    func runWorker() {
        while let call = next() {
            execute(call)
            condition.lock()
            running = nil
            lastProgress = .now
            condition.broadcast()
            condition.unlock()
        }
    }

    private func next() -> Call? {
        condition.lock()
        defer { condition.unlock() }
        while queue.isEmpty {
            if stopped { return nil }
            condition.wait()
        }
        let call = queue.removeFirst()
        running = call
        lastProgress = .now
        return call
    }

    private func execute(_ call: Call) {
        let started = ContinuousClock.now
        if let reason = call.stopReason(at: started) {
            call.finish(.failure(reason))
            return
        }
        do {
            let service = self.service
            var response = try service.caption(call.request) {
                try call.checkpoint()
                noteProgress()
            }
            response.timings.queueWaitMicroseconds = (started - call.received).microseconds
            call.finish(.success(response))
        } catch {
            call.finish(.failure(RPCError(mapping: error)))
        }
    }
}
