import BLIPProtocol

/// What the server needs from a captioning engine. The daemon is written against this, not
/// against the engine, so it can be tested with a fake and the engine knows nothing of sockets.
///
/// The engine owns the work: the server only admits calls (bounded), submits them, cancels them,
/// and delivers what the completion hands back. Completions may arrive on any thread (the engine's
/// own); the server moves them off it before touching a socket.
public protocol CaptionService: Sendable {
    /// Starts one Caption call.
    ///
    /// - Parameters:
    ///   - request: The decoded request.
    ///   - deadline: When the call must stop with `DEADLINE_EXCEEDED`; `nil` for none. The service
    ///     enforces it.
    ///   - onText: When set, receives the caption's text as it is generated, in pieces that
    ///     concatenate to the response's text: `(prompt index, piece)`, from any thread, in order,
    ///     all before `completion`. Only for prompts whose decoding makes one sequence token by token
    ///     (one beam, one returned sequence); a service may also send nothing and let the response
    ///     carry the whole text.
    ///   - completion: Called exactly once (also after ``cancel(_:)``), from any thread, with the
    ///     response or the error that ended the call. Errors should be `RPCErrorConvertible`;
    ///     anything else is reported as `INTERNAL`.
    /// - Returns: The ticket to cancel the call with.
    /// - Throws: When the request is refused before any work (bad parameters); `completion` is
    ///   then never called.
    func submit(_ request: CaptionRequest, deadline: ContinuousClock.Instant?,
                onText: (@Sendable (_ prompt: Int, _ piece: String) -> Void)?,
                completion: @escaping @Sendable (Result<CaptionResponse, any Error>) -> Void) throws -> CaptionTicket

    /// Stops a submitted call soon; its completion still comes (with an error, or the response if
    /// it was finishing). Unknown tickets are ignored.
    func cancel(_ ticket: CaptionTicket)

    /// Whether the engine is healthy: it has no work, or it finished a piece of real work within
    /// `window`. What backs systemd's watchdog; waiting must never count as progress.
    func isMakingProgress(within window: Duration, now: ContinuousClock.Instant) -> Bool

    /// Calls submitted and not yet started, and calls being worked on now (for `/metrics`).
    func load() -> EngineLoad

    /// Static description for Info: model id, config summary, engine version, BLAS kernel and
    /// threads, defaults, the engine's limits, cache and schedule. The server fills
    /// `limits.maxFrameBytes`, `limits.maxQueueDepth` and `counters`.
    func describe() -> InfoResponse

    /// One caption run before the server reports `READY=1`, so the first caller does not pay
    /// for page faults and lazy initialisation.
    func warmUp() throws
}

extension CaptionService {
    /// Starts one Caption call whose text comes only with the response.
    public func submit(_ request: CaptionRequest, deadline: ContinuousClock.Instant?,
                       completion: @escaping @Sendable (Result<CaptionResponse, any Error>) -> Void) throws -> CaptionTicket {
        try submit(request, deadline: deadline, onText: nil, completion: completion)
    }
}

/// How busy the engine is now.
public struct EngineLoad: Sendable, Equatable {
    /// Calls submitted and not yet started.
    public var waiting: Int
    /// Calls being encoded or generated.
    public var running: Int

    public init(waiting: Int, running: Int) {
        self.waiting = waiting
        self.running = running
    }
}

/// Names a submitted call for ``CaptionService/cancel(_:)``.
public struct CaptionTicket: Hashable, Sendable {
    public let id: UInt64
    public init(id: UInt64) { self.id = id }
}
