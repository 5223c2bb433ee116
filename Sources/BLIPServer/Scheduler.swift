import BLIPProtocol
import Foundation

/// The bounded FIFO queue of Caption calls and the inference workers that run them.
///
/// Up to `workers` calls run at once (`--max-batch`): the engine makes concurrent captions take
/// turns for their image encodes and runs their decode steps together, one weight read for all
/// (BLIPEngine's `StepBatcher`), so a second worker adds throughput instead of fighting for the
/// cores. Calls start in arrival order. The queue bounds memory and latency; when it is full a
/// call is refused at once instead of waiting unboundedly.
final class Scheduler: @unchecked Sendable {
    // Guarded by `condition`.
    private let condition = NSCondition()
    private var queue: [Call] = []
    private var running: [Call] = []
    private var accepting = true
    private var stopped = false
    private var lastProgress = ContinuousClock.now

    /// Calls waiting or running at once.
    let capacity: Int
    /// Calls running at once.
    let workers: Int
    /// The service new calls run on; replaced by a reload while a call may be running on the
    /// previous one.
    private let currentService: LockedState<any CaptionService>

    init(service: any CaptionService, capacity: Int, workers: Int = 1) {
        self.currentService = LockedState(service)
        self.capacity = max(capacity, 1)
        self.workers = max(1, min(workers, self.capacity))
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
        queue.count + running.filter { !$0.isFinished }.count
    }

    /// Whether the workers are healthy: idle, or a running call reached a checkpoint (or started
    /// or finished) within `window`. Captions stuck in one step longer than that are not (running
    /// captions wait for each other's encodes and steps, so one stuck caption stops them all).
    func isMakingProgress(within window: Duration, now: ContinuousClock.Instant = .now) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        return running.isEmpty || now - lastProgress < window
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
        while !queue.isEmpty || !running.isEmpty {
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
        for call in running {
            call.stop(reason)
            calls.append(call)
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

    /// One worker (``workers`` of them run): takes queued calls in order and runs them until ``stop()``.
    func runWorker() {
        while let call = next() {
            execute(call)
            condition.lock()
            running.removeAll { $0 === call }
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
        running.append(call)
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
