import BLIPProtocol
import BLIPServer
import Foundation

/// The one fake engine of the tests (in-process servers, and the `blip-captiond-fake` executable):
/// a service that "decodes" `options.maxNewTokens` steps (default 3), sleeping `stepTime` in
/// each, on up to `concurrency` calls at once (an engine of its own: the server holds no thread
/// for it). Like the real engine loop it answers a cancelled call CANCELLED and an expired one
/// DEADLINE_EXCEEDED promptly, whether it is waiting (then it never starts) or running (checked
/// before each step); each finished step is progress. It echoes a caption built from the
/// request. Prompt "wedge" sleeps `wedgeTime` without any progress (a hung engine); prompt
/// "refuse" is refused at submission (INVALID_ARGUMENT), as bad parameters are. With one beam it
/// streams its caption word by word to `onText`; with several `prompts` it answers one result each.
public final class FakeService: CaptionService {
    public let stepTime: Duration
    public let wedgeTime: Duration
    public let modelID: String

    public enum Phase: Sendable { case waiting, running, done }

    public struct Record: Sendable {
        public var started = 0
        public var stoppedByCheckpoint: [StatusCode] = []
        public var completed = 0
        public var cancelled: Set<UInt64> = []
        public var phases: [UInt64: Phase] = [:]
        public var nextTicket: UInt64 = 1
        public var busy = 0
        public var lastProgress = ContinuousClock.now
    }
    public let record = LockedState(Record())
    private let workers: OperationQueue
    /// Where waiting calls expire: a queue of its own (a new thread when it needs one), so a busy
    /// global queue never delays an expiry.
    private let deadlines = DispatchQueue(label: "fake-service-deadlines")

    public init(stepTime: Duration = .milliseconds(5), wedgeTime: Duration = .milliseconds(600), modelID: String = "fake/blip",
         concurrency: Int = 1) {
        self.stepTime = stepTime
        self.wedgeTime = wedgeTime
        self.modelID = modelID
        workers = OperationQueue()
        workers.maxConcurrentOperationCount = concurrency
    }

    public func submit(_ request: CaptionRequest, deadline: ContinuousClock.Instant?,
                onText: (@Sendable (Int, String) -> Void)?,
                completion: @escaping @Sendable (Result<CaptionResponse, any Error>) -> Void) throws -> CaptionTicket {
        if request.prompt == "refuse" { throw RPCError(code: .invalidArgument, message: "refused by the fake engine") }
        let ticket = record.withLock { r -> CaptionTicket in
            if r.busy == 0 { r.lastProgress = .now }
            r.busy += 1
            r.nextTicket += 1
            r.phases[r.nextTicket - 1] = .waiting
            return CaptionTicket(id: r.nextTicket - 1)
        }
        let finish: @Sendable (Result<CaptionResponse, any Error>) -> Void = { [self] result in
            let first = record.withLock { r -> Bool in
                guard r.phases[ticket.id] != .done else { return false }
                r.phases[ticket.id] = .done
                r.busy -= 1
                r.lastProgress = .now
                return true
            }
            if first { completion(result) }
        }
        if let deadline {
            let seconds = Double((deadline - .now).components.attoseconds) / 1e18 + Double((deadline - .now).components.seconds)
            deadlines.asyncAfter(deadline: .now() + max(0, seconds)) { [self] in
                if record.withLock({ $0.phases[ticket.id] == .waiting }) {
                    finish(.failure(RPCError(code: .deadlineExceeded, message: "expired while waiting")))
                }
            }
        }
        workers.addOperation { [self] in
            let start = record.withLock { r -> Bool in
                guard r.phases[ticket.id] == .waiting else { return false }
                r.phases[ticket.id] = .running
                return true
            }
            if start { finish(run(request, ticket: ticket, deadline: deadline, onText: onText)) }
        }
        pendingFinishers.withLock { $0[ticket.id] = finish }
        return ticket
    }

    private let pendingFinishers = LockedState<[UInt64: @Sendable (Result<CaptionResponse, any Error>) -> Void]>([:])

    private func run(_ request: CaptionRequest, ticket: CaptionTicket, deadline: ContinuousClock.Instant?,
                     onText: (@Sendable (Int, String) -> Void)?) -> Result<CaptionResponse, any Error> {
        record.withLock { $0.started += 1; $0.lastProgress = .now }
        if request.prompt == "wedge" { sleep(wedgeTime) }
        let steps = Int(request.options.maxNewTokens ?? 3)
        for step in 0...steps {
            let stop: StatusCode? = record.withLock { r in
                if r.cancelled.contains(ticket.id) { return .cancelled }
                if let deadline, ContinuousClock.now >= deadline { return .deadlineExceeded }
                return nil
            }
            if let stop {
                record.withLock { $0.stoppedByCheckpoint.append(stop) }
                return .failure(RPCError(code: stop, message: "stopped by the fake engine"))
            }
            if step == steps { break }
            sleep(stepTime)
            record.withLock { $0.lastProgress = .now }
        }
        record.withLock { $0.completed += 1 }
        let text = "\(request.prompt ?? "a picture") of \(request.image.data.count) bytes"
        if let onText, request.options.numBeams == 1 {
            // One piece per word, as a streaming engine hands them out.
            for (index, word) in text.split(separator: " ").enumerated() { onText(0, (index == 0 ? "" : " ") + word) }
        }
        func candidate(_ text: String) -> CaptionResponse.Candidate {
            .init(text: text, tokenIDs: [30522, 1037, 102], score: -1.5, finishReason: .eos)
        }
        guard request.prompts.isEmpty else {
            // Several prompts: one result each, in order, as the engine answers them.
            let results = request.prompts.map { prompt in
                CaptionResponse.PromptResult(prompt: prompt, candidates: [candidate("\(prompt.isEmpty ? "a picture" : prompt) of \(request.image.data.count) bytes")])
            }
            return .success(CaptionResponse(modelID: modelID, results: results))
        }
        return .success(CaptionResponse(candidates: [candidate(text)], modelID: modelID))
    }

    public func load() -> EngineLoad {
        record.withLock { r in
            EngineLoad(waiting: r.phases.values.filter { $0 == .waiting }.count, running: r.phases.values.filter { $0 == .running }.count)
        }
    }

    public func cancel(_ ticket: CaptionTicket) {
        let waiting = record.withLock { r -> Bool in
            r.cancelled.insert(ticket.id)
            return r.phases[ticket.id] == .waiting
        }
        if waiting, let finish = pendingFinishers.withLock({ $0[ticket.id] }) {
            record.withLock { $0.stoppedByCheckpoint.append(.cancelled) }
            finish(.failure(RPCError(code: .cancelled, message: "cancelled while waiting")))
        }
    }

    public func isMakingProgress(within window: Duration, now: ContinuousClock.Instant) -> Bool {
        record.withLock { $0.busy == 0 || now - $0.lastProgress < window }
    }

    /// What Info reports as the feature cache's statistics (a test sets them).
    public let featureCache = LockedState(InfoResponse.FeatureCacheStats())

    public func describe() -> InfoResponse {
        InfoResponse(modelID: modelID, engineVersion: "test", blasCore: "none", blasThreads: 1,
                     defaults: .documentedDefaults,
                     limits: .init(maxImageBytes: 1 << 20, maxPixels: 1 << 22, maxTokens: 512, maxBeams: 8, maxTextBytes: 512, maxBadWords: 64),
                     featureCache: featureCache.withLock { $0 })
    }

    public func warmUp() throws {}

    private func sleep(_ duration: Duration) {
        Thread.sleep(forTimeInterval: Double(duration.components.attoseconds) / 1e18 + Double(duration.components.seconds))
    }
}
