import BLIPProtocol
import BLIPServer
import Foundation

/// TEST HOOK ONLY (`--test-fake-service`, hidden from --help): a service with no model, so the
/// end-to-end tests can run the real binary under systemd-socket-activate. It "decodes"
/// `options.maxNewTokens` steps (default 3) of 5 ms each, one call at a time on its own queue,
/// stopping a cancelled call or one past its deadline before each step, and echoes a caption
/// made from the request. Never use it to serve real callers.
final class TestHookService: CaptionService {
    private struct State {
        var cancelled: Set<UInt64> = []
        var nextTicket: UInt64 = 1
        var busy = 0
        var lastProgress = ContinuousClock.now
    }
    private let state = LockedState(State())
    private let queue = DispatchQueue(label: "test-hook-engine")

    func submit(_ request: CaptionRequest, deadline: ContinuousClock.Instant?,
                onText: (@Sendable (Int, String) -> Void)?,
                completion: @escaping @Sendable (Result<CaptionResponse, any Error>) -> Void) throws -> CaptionTicket {
        let ticket = state.withLock { s -> CaptionTicket in
            if s.busy == 0 { s.lastProgress = .now }
            s.busy += 1
            s.nextTicket += 1
            return CaptionTicket(id: s.nextTicket - 1)
        }
        queue.async { [self] in
            let result = run(request, ticket: ticket, deadline: deadline)
            state.withLock { $0.busy -= 1; $0.lastProgress = .now }
            completion(result)
        }
        return ticket
    }

    private func run(_ request: CaptionRequest, ticket: CaptionTicket, deadline: ContinuousClock.Instant?) -> Result<CaptionResponse, any Error> {
        let steps = Int(request.options.maxNewTokens ?? 3)
        for step in 0...steps {
            if state.withLock({ $0.cancelled.contains(ticket.id) }) {
                return .failure(RPCError(code: .cancelled, message: "cancelled"))
            }
            if let deadline, ContinuousClock.now >= deadline {
                return .failure(RPCError(code: .deadlineExceeded, message: "deadline passed"))
            }
            if step == steps { break }
            Thread.sleep(forTimeInterval: 0.005)
            state.withLock { $0.lastProgress = .now }
        }
        let text = "\(request.prompt ?? "a picture") of \(request.image.data.count) bytes"
        return .success(CaptionResponse(candidates: [.init(text: text, tokenIDs: [30522, 102], score: -1, finishReason: .eos)],
                                        modelID: "test/fake-service"))
    }

    func cancel(_ ticket: CaptionTicket) {
        state.withLock { _ = $0.cancelled.insert(ticket.id) }
    }

    func isMakingProgress(within window: Duration, now: ContinuousClock.Instant) -> Bool {
        state.withLock { $0.busy == 0 || now - $0.lastProgress < window }
    }

    func load() -> EngineLoad {
        let busy = state.withLock { $0.busy }
        return EngineLoad(waiting: max(0, busy - 1), running: min(busy, 1))  // one call at a time on `queue`
    }

    func describe() -> InfoResponse {
        InfoResponse(modelID: "test/fake-service", engineVersion: "test hook", defaults: .documentedDefaults)
    }

    func warmUp() throws {
        Thread.sleep(forTimeInterval: 0.05)
    }
}
