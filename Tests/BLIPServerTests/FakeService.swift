import BLIPProtocol
import BLIPServer
import Foundation
import Synchronization

/// A service that "decodes" `options.maxNewTokens` steps (default 3), sleeping `stepTime` in
/// each and calling the checkpoint before each, and echoes a caption built from the request.
/// Prompt "wedge" sleeps `wedgeTime` without reaching a checkpoint (a hung engine).
final class FakeService: CaptionService {
    let stepTime: Duration
    let wedgeTime: Duration
    let modelID: String

    struct Record: Sendable {
        var started = 0
        var stoppedByCheckpoint: [StatusCode] = []
        var completed = 0
    }
    let record = Mutex(Record())

    init(stepTime: Duration = .milliseconds(5), wedgeTime: Duration = .milliseconds(600), modelID: String = "fake/blip") {
        self.stepTime = stepTime
        self.wedgeTime = wedgeTime
        self.modelID = modelID
    }

    func caption(_ request: CaptionRequest, checkpoint: () throws -> Void) throws -> CaptionResponse {
        record.withLock { $0.started += 1 }
        if request.prompt == "wedge" { sleep(wedgeTime) }
        do {
            for _ in 0..<Int(request.options.maxNewTokens ?? 3) {
                try checkpoint()
                sleep(stepTime)
            }
            try checkpoint()
        } catch {
            record.withLock { $0.stoppedByCheckpoint.append(RPCError(mapping: error).code) }
            throw error
        }
        record.withLock { $0.completed += 1 }
        let text = "\(request.prompt ?? "a picture") of \(request.image.data.count) bytes"
        return CaptionResponse(
            candidates: [.init(text: text, tokenIDs: [30522, 1037, 102], score: -1.5)],
            modelID: modelID
        )
    }

    func describe() -> InfoResponse {
        InfoResponse(modelID: modelID, engineVersion: "test", blasCore: "none", blasThreads: 1,
                     defaults: .documentedDefaults,
                     limits: .init(maxImageBytes: 1 << 20, maxPixels: 1 << 22, maxTokens: 64, maxBeams: 8))
    }

    func warmUp() throws {}

    private func sleep(_ duration: Duration) {
        Thread.sleep(forTimeInterval: Double(duration.components.attoseconds) / 1e18 + Double(duration.components.seconds))
    }
}
