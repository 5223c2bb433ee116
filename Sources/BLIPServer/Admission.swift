import BLIPProtocol
import Foundation

/// Admits Caption calls to the engine: at most `capacity` calls are in flight (waiting in the
/// engine or running); one more is refused at once with `RESOURCE_EXHAUSTED` instead of waiting
/// unboundedly. What runs when — batching, encode lanes, deadlines, cancellation — and how a call
/// ends is the engine's business (`CaptionService`): the engine's completion is the call's answer.
/// The server holds no inference thread, and no record of a call but the ``Call`` itself: here
/// only the count of admitted calls.
///
/// Completions arrive on the engine's thread; the answer is handed to the connection's event
/// loop (``CallOwner/complete(_:_:)``), so the engine never writes to a socket and a client that
/// stops reading never holds it up.
final class Admission: @unchecked Sendable {
    // Guarded by `lock`.
    private let lock = NSLock()
    private var admitted = 0
    private var accepting = true
    /// Run once when `admitted` next reaches 0 (the drain).
    private var idleWaiters: [@Sendable () -> Void] = []

    /// Calls in flight at once.
    let capacity: Int
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
        lock.lock()
        guard accepting else {
            lock.unlock()
            return RPCError(code: .unavailable, message: "the server is shutting down; retry on a new connection")
        }
        guard admitted < capacity else {
            lock.unlock()
            return RPCError(code: .resourceExhausted, message: "the caption queue is full (\(capacity) calls waiting or running); retry later")
        }
        admitted += 1
        lock.unlock()

        let service = self.service
        let submitted = ContinuousClock.now
        do {
            let ticket = try service.submit(call.request, deadline: call.deadline, onText: call.onText) { [self] result in
                // Counted out before the answer goes out, so a client that has read it sees the
                // depth without it; the drain is told only after, so the answer is on its way to
                // the event loop before the drain closes the connections.
                let idleNow = release()
                call.finish(Self.answer(result, call: call, submitted: submitted))
                for waiter in idleNow { waiter() }
            }
            call.started(on: service, ticket: ticket)
            return nil
        } catch {
            for waiter in release() { waiter() }
            return RPCError(mapping: error)
        }
    }

    /// The engine's result as the call's answer: the engine decided it; the server adds the wait
    /// before submission and, for a deadline, how long the call had and took.
    private static func answer(_ result: Result<CaptionResponse, any Error>, call: Call,
                               submitted: ContinuousClock.Instant) -> Result<CaptionResponse, RPCError> {
        switch result {
        case .success(var response):
            response.timings.queueWaitMicroseconds += (submitted - call.received).microseconds
            return .success(response)
        case .failure(let error):
            var rpcError = RPCError(mapping: error)
            if rpcError.code == .deadlineExceeded, let deadline = call.deadline {
                let now = ContinuousClock.now
                rpcError.message = "deadline of \(elapsedText(deadline - call.received)) passed after \(elapsedText(now - call.received)); allow the call more time (its timeout) or retry when the server is less busy"
            }
            return .failure(rpcError)
        }
    }

    /// Counts a call out; returns the idle waiters to run when it was the last.
    private func release() -> [@Sendable () -> Void] {
        lock.lock()
        defer { lock.unlock() }
        admitted -= 1
        guard admitted == 0 else { return [] }
        defer { idleWaiters = [] }
        return idleWaiters
    }

    /// Calls admitted and not yet answered by the engine.
    var depth: Int {
        lock.lock()
        defer { lock.unlock() }
        return admitted
    }

    /// Whether the engine is healthy (``CaptionService/isMakingProgress(within:now:)``).
    func isMakingProgress(within window: Duration, now: ContinuousClock.Instant = .now) -> Bool {
        service.isMakingProgress(within: window, now: now)
    }

    /// Refuses new calls from now on (shutdown has begun).
    func stopAccepting() {
        lock.lock()
        accepting = false
        lock.unlock()
    }

    /// Runs `callback` once no call is in flight (at once when none is), from whichever thread
    /// answered the last one.
    func whenIdle(_ callback: @escaping @Sendable () -> Void) {
        lock.lock()
        guard admitted > 0 else {
            lock.unlock()
            callback()
            return
        }
        idleWaiters.append(callback)
        lock.unlock()
    }
}
