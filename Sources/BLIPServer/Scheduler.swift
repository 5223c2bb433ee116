import BLIPProtocol
import Foundation

/// Admits Caption calls to the engine and delivers their answers: at most `capacity` calls are in
/// flight (waiting in the engine or running); one more is refused at once with
/// `RESOURCE_EXHAUSTED` instead of waiting unboundedly. What runs when — batching, encode lanes,
/// deadlines, cancellation — is the engine's business (`CaptionService`); the server holds no
/// inference thread.
///
/// Completions arrive on the engine's thread; the answer is handed to the connection's event
/// loop (`Connection.complete`), so the engine never writes to a socket and a client that stops
/// reading never holds it up.
final class Scheduler: @unchecked Sendable {
    // Guarded by `condition`.
    private let condition = NSCondition()
    private var inFlight: [ObjectIdentifier: Call] = [:]
    private var accepting = true

    /// Calls in flight at once.
    let capacity: Int
    /// The service new calls run on; replaced by a reload while calls may be running on the
    /// previous one (each call keeps the service it was submitted to).
    /// Holds the only reference the server keeps to the service: a replaced one is released as
    /// soon as its last call has finished (each call holds the service it runs on until then).
    private let currentService: LockedState<(service: any CaptionService, generation: Int)>

    init(service: any CaptionService, capacity: Int) {
        self.currentService = LockedState((service, 0))
        self.capacity = max(capacity, 1)
    }

    /// The service the next call will run on.
    var service: any CaptionService { currentService.withLock { $0.service } }

    /// The service and how many times it was replaced before (0 for the first): what `/metrics`
    /// uses to tell a reloaded engine's counters, which start again at 0, from the old one's.
    var serviceAndGeneration: (service: any CaptionService, generation: Int) { currentService.withLock { $0 } }

    /// Runs later calls on `service`; calls already submitted finish on the old one.
    func replaceService(_ service: any CaptionService) {
        currentService.withLock { $0 = (service, $0.generation + 1) }
    }

    /// Submits `call` to the engine, or says why not (`RESOURCE_EXHAUSTED`, `UNAVAILABLE`, or
    /// the engine's refusal of the request).
    func submit(_ call: Call) -> RPCError? {
        condition.lock()
        guard accepting else {
            condition.unlock()
            return RPCError(code: .unavailable, message: "the server is shutting down; retry on a new connection")
        }
        guard inFlight.count < capacity else {
            condition.unlock()
            return RPCError(code: .resourceExhausted, message: "the caption queue is full (\(capacity) calls waiting or running); retry later")
        }
        inFlight[ObjectIdentifier(call)] = call
        condition.unlock()

        let service = self.service
        let submitted = ContinuousClock.now
        do {
            let ticket = try service.submit(call.request, deadline: call.deadline, onText: call.onText) { [self] result in
                deliver(call, result, submitted: submitted)
            }
            call.started(on: service, ticket: ticket)
            return nil
        } catch {
            forget(call)
            return RPCError(mapping: error)
        }
    }

    /// Asks the engine to stop `call` (whose stop reason is already set); its answer comes with
    /// the completion.
    func cancel(_ call: Call) {
        call.cancelInEngine()
    }

    private func deliver(_ call: Call, _ result: Result<CaptionResponse, any Error>, submitted: ContinuousClock.Instant) {
        switch result {
        case .success(var response):
            response.timings.queueWaitMicroseconds += (submitted - call.received).microseconds
            call.finish(.success(response))
        case .failure(let error):
            // A call stopped by the server (cancel, closed connection, deadline) answers with that
            // reason, whatever words the engine chose.
            call.finish(.failure(call.stopReason() ?? RPCError(mapping: error)))
        }
        forget(call)
    }

    private func forget(_ call: Call) {
        condition.lock()
        inFlight[ObjectIdentifier(call)] = nil
        condition.broadcast()
        condition.unlock()
    }

    /// Calls in flight now. A call whose response is decided no longer counts, so a client that
    /// has read every response sees depth 0.
    var depth: Int {
        condition.lock()
        defer { condition.unlock() }
        return inFlight.values.filter { !$0.isFinished }.count
    }

    /// Whether the engine is healthy (``CaptionService/isMakingProgress(within:now:)``).
    func isMakingProgress(within window: Duration, now: ContinuousClock.Instant = .now) -> Bool {
        service.isMakingProgress(within: window, now: now)
    }

    /// Refuses new calls from now on (shutdown has begun).
    func stopAccepting() {
        condition.lock()
        accepting = false
        condition.unlock()
    }

    /// Waits until no call is in flight, or `deadline`; `true` when idle.
    func waitUntilIdle(before deadline: ContinuousClock.Instant) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while !inFlight.isEmpty {
            let left = deadline - .now
            guard left > .zero else { return false }
            _ = condition.wait(until: Date(timeIntervalSinceNow: min(Double(left.microseconds) / 1e6, 0.1)))
        }
        return true
    }

    /// Stops every call in flight with `reason` (the engine is asked to drop them) and returns
    /// them, so the caller can answer them at once.
    func abandonAll(_ reason: RPCError) -> [Call] {
        condition.lock()
        let calls = Array(inFlight.values)
        condition.unlock()
        for call in calls {
            call.stop(reason)
            call.cancelInEngine()
        }
        return calls
    }
}
