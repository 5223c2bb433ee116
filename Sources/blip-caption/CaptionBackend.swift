import BLIPCaptionService
import BLIPClient

/// Where captions come from: blip-captiond, or (`--local`) the daemon's own service in this
/// process. Both take the same `CaptionRequest` and answer the same `CaptionResponse`.
enum CaptionBackend: Sendable {
    case local(EngineCaptionService)
    case daemon(CaptionClient)

    /// One call. `timeout` bounds daemon calls only: `--local` has no queue and runs to the end,
    /// as the `--timeout` help says.
    /// - Throws: `RPCError` (local), `CaptionClientError` (daemon), or `CancellationError`.
    func caption(_ request: CaptionRequest, timeout: Duration) async throws -> CaptionResponse {
        switch self {
        case .local(let service): try await service.caption(request, timeout: nil)
        case .daemon(let client): try await client.caption(request, timeout: timeout)
        }
    }

    /// The service's Info: the limits the CLI checks its options against before any image, and
    /// the schedule its default concurrency follows.
    /// - Throws: `CaptionClientError` when the daemon cannot answer.
    func info(timeout: Duration) async throws -> InfoResponse {
        switch self {
        case .local(let service): service.describe()
        case .daemon(let client): try await client.info(timeout: timeout)
        }
    }
}
