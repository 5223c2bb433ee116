#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
@_exported import BLIPProtocol

/// Talks to blip-captiond over its Unix socket.
///
/// One client holds one connection, opened at the first call, shared by every call in flight
/// (replies are matched by call id, in any order), and re-opened by the first call after it
/// breaks. Share one client across tasks:
/// ```swift
/// let client = CaptionClient()
/// let response = try await client.caption(image: jpegBytes)
/// print(response.candidates[0].text)
/// ```
/// Every call has a deadline: it is sent to the daemon and also enforced here, so a hung daemon
/// never hangs the caller. Cancelling the calling task sends the protocol's cancel and the call
/// throws `CancellationError`.
public final class CaptionClient: Sendable {
    /// The socket `blip-captiond.socket` listens on.
    public static let defaultSocketPath = "/run/blip-captiond/blip-captiond.sock"
    /// The environment variable that overrides ``defaultSocketPath``.
    public static let socketPathEnvironmentVariable = "BLIP_CAPTIOND_SOCKET"
    /// The largest reply frame accepted by default, in bytes.
    public static let defaultMaxFrameBytes = 64 << 20

    /// The socket this client connects to.
    public let socketPath: String
    /// The largest reply frame accepted; a longer one fails the connection as a protocol violation.
    public let maxFrameBytes: Int
    /// When calls are tried again (``RetryPolicy/none`` unless given).
    public let retryPolicy: RetryPolicy

    private let connection = LockedState<Connection?>(nil)

    /// Makes a client; nothing is opened until the first call.
    /// - Parameters:
    ///   - socketPath: The daemon's socket; `nil` means `$BLIP_CAPTIOND_SOCKET`, else
    ///     ``defaultSocketPath``.
    ///   - maxFrameBytes: The largest reply frame to accept.
    ///   - retryPolicy: When a call that the daemon turned away (`RESOURCE_EXHAUSTED`,
    ///     `UNAVAILABLE`) or lost in a restart is tried again; none by default, so that a caller
    ///     with its own retries does not multiply them.
    public init(socketPath: String? = nil, maxFrameBytes: Int = CaptionClient.defaultMaxFrameBytes,
                retryPolicy: RetryPolicy = .none) {
        let environment = getenv(Self.socketPathEnvironmentVariable).map { String(cString: $0) }
        self.socketPath = Self.resolveSocketPath(socketPath, environment: environment)
        self.maxFrameBytes = maxFrameBytes
        self.retryPolicy = retryPolicy
    }

    deinit {
        connection.withLock { $0 }?.fail(.connectionLost("the client was released"))
    }

    /// The path a client connects to: `explicit`, else a non-empty `environment` value, else the default.
    static func resolveSocketPath(_ explicit: String?, environment: String?) -> String {
        if let explicit { return explicit }
        if let environment, !environment.isEmpty { return environment }
        return defaultSocketPath
    }

    /// Captions one image.
    /// - Parameters:
    ///   - image: The JPEG or PNG file's bytes.
    ///   - format: How `image` is encoded; `.auto` tells JPEG from PNG by signature. For raw
    ///     pixels use ``caption(_:timeout:)``, which takes the width and height.
    ///   - prompt: Text the caption continues, e.g. `"a picture of"`; `nil` for none.
    ///   - options: Generation parameters; unset ones take the daemon's defaults.
    ///   - applyEXIFOrientation: Whether to turn a JPEG upright by its EXIF tag first.
    ///   - timeout: The call's deadline.
    /// - Returns: The captions, best first, with the model id and timings.
    /// - Throws: ``CaptionClientError`` (`.rpc` for a non-OK status), or `CancellationError`.
    public func caption(
        image: [UInt8], format: CaptionRequest.Image.Format = .auto, prompt: String? = nil,
        options: DecodingOptions = .init(), applyEXIFOrientation: Bool = true,
        timeout: Duration = .seconds(60)
    ) async throws -> CaptionResponse {
        let request = CaptionRequest(image: Self.image(image, format, applyEXIFOrientation), prompt: prompt, options: options)
        return try await caption(request, timeout: timeout)
    }

    /// Captions one image once per prompt, in one call: the image is sent once, and every
    /// prompt's captions are generated with the same options.
    /// ```swift
    /// let reply = try await client.caption(image: jpegBytes, prompts: ["", "a picture of"])
    /// for result in reply.results { print(result.prompt, result.candidates[0].text) }
    /// ```
    /// - Parameters:
    ///   - image: The JPEG or PNG file's bytes.
    ///   - format: How `image` is encoded; `.auto` tells JPEG from PNG by signature.
    ///   - prompts: Texts the captions continue, `""` for an unconditional caption; at most
    ///     `InfoResponse.Limits.maxPrompts` (8). Sent as `CaptionRequest.prompts`, even when it
    ///     holds one prompt (the answer is then in `results` too). Empty sends no prompts: one
    ///     unconditional caption, answered in `candidates` (`promptResults(prompt: nil)` reads both).
    ///   - options: Generation parameters, the same for every prompt; unset ones take the daemon's
    ///     defaults.
    ///   - applyEXIFOrientation: Whether to turn a JPEG upright by its EXIF tag first.
    ///   - timeout: The whole call's deadline, every prompt included.
    /// - Returns: `results`, one per prompt in the order given, each with its candidates best first;
    ///   `candidates` is empty.
    /// - Throws: ``CaptionClientError`` (`.rpc` for a non-OK status: `INVALID_ARGUMENT` for more
    ///   than `maxPrompts` prompts), or `CancellationError`.
    public func caption(
        image: [UInt8], format: CaptionRequest.Image.Format = .auto, prompts: [String],
        options: DecodingOptions = .init(), applyEXIFOrientation: Bool = true,
        timeout: Duration = .seconds(60)
    ) async throws -> CaptionResponse {
        let request = CaptionRequest(image: Self.image(image, format, applyEXIFOrientation), options: options, prompts: prompts)
        return try await caption(request, timeout: timeout)
    }

    /// The request's image; the EXIF switch is sent only when it differs from the default.
    private static func image(_ data: [UInt8], _ format: CaptionRequest.Image.Format, _ applyEXIFOrientation: Bool) -> CaptionRequest.Image {
        CaptionRequest.Image(data: data, format: format, applyEXIFOrientation: applyEXIFOrientation ? nil : false)
    }

    /// Sends a complete caption request (e.g. raw RGB8 pixels with their width and height).
    /// - Throws: ``CaptionClientError`` (`.rpc` for a non-OK status, and `INVALID_ARGUMENT` without
    ///   sending for a prompt or bad word holding a NUL byte, which the wire cannot carry;
    ///   `.protocolViolation` when a request with `prompts` is not answered with one result per
    ///   prompt, as a daemon that predates `prompts` would), or `CancellationError`.
    public func caption(_ request: CaptionRequest, timeout: Duration = .seconds(60)) async throws -> CaptionResponse {
        if let field = request.fieldHoldingNUL {
            throw CaptionClientError.rpc(RPCError(
                code: .invalidArgument,
                message: "CaptionRequest.\(field) contains a NUL byte, which the wire cannot carry (docs/protocol.md §2); remove it"))
        }
        let response: CaptionResponse = try await call(.caption, request, timeout: timeout)
        if !request.prompts.isEmpty && response.results.count != request.prompts.count {
            throw CaptionClientError.protocolViolation(
                "\(request.prompts.count) prompts were answered with \(response.results.count) results (a daemon without CaptionRequest.prompts ignores them)")
        }
        return response
    }

    /// Asks whether the daemon serves: `""` for the daemon as a whole, or a service name such as
    /// `"blip.v1.Captioner"`.
    /// - Throws: ``CaptionClientError``, or `CancellationError`.
    public func health(service: String = "", timeout: Duration = .seconds(10)) async throws -> HealthCheckResponse.ServingStatus {
        let response: HealthCheckResponse = try await call(.healthCheck, HealthCheckRequest(service: service),
                                                           timeout: timeout)
        return response.status
    }

    /// The daemon's model, version, defaults, limits and counters.
    /// - Throws: ``CaptionClientError``, or `CancellationError`.
    public func info(timeout: Duration = .seconds(10)) async throws -> InfoResponse {
        try await call(.info, InfoRequest(), timeout: timeout)
    }

    /// Closes the connection. Calls in flight fail with ``CaptionClientError/connectionLost(_:)``;
    /// a later call opens a new connection.
    public func close() async {
        connection.withLock { connection in
            defer { connection = nil }
            return connection
        }?.fail(.connectionLost("the client was closed"))
    }

    /// One call, tried again as ``retryPolicy`` allows while its deadline (`timeout` from now)
    /// leaves time: each attempt gets what remains of it.
    private func call<Response: WireMessage>(
        _ method: RPCMethod, _ request: some WireMessage, timeout: Duration
    ) async throws -> Response {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var attempt = 1
        var random = SystemRandomNumberGenerator()
        while true {
            do {
                // The first attempt sends the caller's timeout as given; a retry, what is left of it.
                return try await attemptCall(method, request, timeout: attempt == 1 ? timeout : deadline - clock.now)
            } catch let error as CaptionClientError {
                guard retryPolicy.shouldRetry(error, attempt: attempt) else { throw error }
                let wait = retryPolicy.backoff(after: attempt, using: &random)
                // A retry that could not start before the deadline would only turn this error
                // into DEADLINE_EXCEEDED: report what the daemon said instead.
                guard clock.now + wait < deadline else { throw error }
                try await Task.sleep(for: wait)
                // A sleep that overslept (a busy process) must not start an attempt past the deadline.
                guard clock.now < deadline else { throw error }
                attempt += 1
            }
        }
    }

    /// One attempt: send `request` as `method`, wait for the response, map its status.
    private func attemptCall<Response: WireMessage>(
        _ method: RPCMethod, _ request: some WireMessage, timeout: Duration
    ) async throws -> Response {
        try Task.checkCancellation()
        let reply = try await openConnection(timeout: timeout)
            .call(method: method, payload: request.encoded(), timeout: timeout)
        if let error = reply.responseStatus.error { throw CaptionClientError.rpc(error) }
        do {
            return try Response(decoding: reply.payload)
        } catch {
            throw CaptionClientError.protocolViolation("the reply to \(method.rawValue) is not a \(Response.messageName): \(error)")
        }
    }

    /// The live connection, opened now if there is none or the last one broke.
    private func openConnection(timeout: Duration) throws(CaptionClientError) -> Connection {
        try connection.withLock { (connection: inout Connection?) throws(CaptionClientError) -> Connection in
            if let live = connection, live.isAlive { return live }
            let fresh = try Connection(path: socketPath, maxFrameBytes: maxFrameBytes, connectTimeout: timeout)
            connection = fresh
            return fresh
        }
    }
}
