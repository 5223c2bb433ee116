import BLIPProtocol

/// What the server needs from a captioning engine. The daemon is written against this, not
/// against the engine, so it can be tested with a fake and the engine knows nothing of sockets.
///
/// The server calls ``caption(_:checkpoint:)`` from up to `ServerConfiguration.maxBatch` inference
/// threads at once (one unless configured otherwise), and ``describe()`` from connection threads
/// at any time.
public protocol CaptionService: Sendable {
    /// Runs one caption.
    ///
    /// - Parameters:
    ///   - request: The decoded request.
    ///   - checkpoint: Call it between decoding stages and generation steps. It throws when the
    ///     call's deadline passed, the call was cancelled or its connection closed, or the server
    ///     is shutting down; let that error propagate unchanged.
    /// - Throws: the checkpoint's error, or an engine error. Errors should be
    ///   `RPCErrorConvertible` (the engine adapter maps them); anything else is reported as
    ///   `INTERNAL`.
    func caption(_ request: CaptionRequest, checkpoint: () throws -> Void) throws -> CaptionResponse

    /// Static description for Info: model id, config summary, engine version, BLAS kernel and
    /// threads, defaults, and the engine's limits (image bytes, pixels, tokens, beams). The
    /// server fills `limits.maxFrameBytes`, `limits.maxQueueDepth` and `counters`.
    func describe() -> InfoResponse

    /// One caption run before the server reports `READY=1`, so the first caller does not pay
    /// for page faults and lazy initialisation.
    func warmUp() throws
}
