import BLIPProtocol

/// One Caption call in flight, the one record of it: its request, where its answer goes, the
/// engine running it, and whether it is answered. Exactly one response is sent for it — the
/// engine's, or the server's `UNAVAILABLE` when shutdown's grace period ends first.
final class Call: Sendable {
    /// The client's call id, unique among this connection's calls in flight.
    let id: UInt64
    let request: CaptionRequest
    /// When the server read the request frame.
    let received: ContinuousClock.Instant
    /// `received + timeout`, or `nil` for no deadline: the engine enforces it.
    let deadline: ContinuousClock.Instant?
    /// Where the response goes.
    let owner: any CallOwner
    /// Receives the caption's text as it is generated (``CaptionService/submit(_:deadline:onText:completion:)``),
    /// from the engine's thread; `nil` when the answer carries it all.
    let onText: (@Sendable (_ prompt: Int, _ piece: String) -> Void)?

    private struct State {
        var finished = false
        /// The engine running it, once submitted.
        var engine: (service: any CaptionService, ticket: CaptionTicket)?
        /// Cancelled before the engine's ticket was known: cancel as soon as it is.
        var cancelPending = false
    }
    private let state = LockedState(State())

    init(id: UInt64, request: CaptionRequest, received: ContinuousClock.Instant,
         timeout: Duration?, owner: any CallOwner, onText: (@Sendable (_ prompt: Int, _ piece: String) -> Void)? = nil) {
        self.id = id
        self.request = request
        self.received = received
        self.deadline = timeout.map { received + $0 }
        self.owner = owner
        self.onText = onText
    }

    /// Records the engine's ticket; cancels at once if a cancel came first.
    func started(on service: any CaptionService, ticket: CaptionTicket) {
        let cancelNow = state.withLock { state -> Bool in
            state.engine = (service, ticket)
            return state.cancelPending
        }
        if cancelNow { service.cancel(ticket) }
    }

    /// Asks the engine to stop the call (now, or as soon as it is submitted); the engine answers
    /// it `CANCELLED` within one piece of work, unless it was finishing.
    func cancel() {
        let engine = state.withLock { state -> (service: any CaptionService, ticket: CaptionTicket)? in
            if state.engine == nil { state.cancelPending = true }
            return state.engine
        }
        engine.map { $0.service.cancel($0.ticket) }
    }

    /// Sends `outcome` as the call's one response (ignored if it already has one).
    func finish(_ outcome: Result<CaptionResponse, RPCError>) {
        let first = state.withLock { state -> Bool in
            guard !state.finished else { return false }
            state.finished = true
            return true
        }
        if first { owner.complete(self, outcome) }
    }
}

/// "1.234 s" / "12 ms" for log lines and messages.
func elapsedText(_ duration: Duration) -> String {
    let (seconds, attoseconds) = duration.components
    let milliseconds = seconds * 1000 + attoseconds / 1_000_000_000_000_000
    return milliseconds >= 10_000 ? "\(milliseconds / 1000) s" : "\(milliseconds) ms"
}

extension Duration {
    /// Whole microseconds, clamped at 0.
    var microseconds: UInt64 {
        let (seconds, attoseconds) = components
        guard seconds >= 0 else { return 0 }
        return UInt64(seconds) * 1_000_000 + UInt64(max(attoseconds, 0) / 1_000_000_000_000)
    }
}

/// What answers a call: an RPC connection or an HTTP exchange. `complete` may be called from any
/// thread (the engine's); it must hop to wherever the answer is written.
protocol CallOwner: AnyObject, Sendable {
    func complete(_ call: Call, _ outcome: Result<CaptionResponse, RPCError>)
}
