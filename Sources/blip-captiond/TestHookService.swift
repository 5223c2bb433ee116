import BLIPProtocol
import BLIPServer
import Foundation

/// TEST HOOK ONLY (`--test-fake-service`, hidden from --help): a service with no model, so the
/// end-to-end tests can run the real binary under systemd-socket-activate. It "decodes"
/// `options.maxNewTokens` steps (default 3) of 5 ms each, calling the checkpoint before each,
/// and echoes a caption made from the request. Never use it to serve real callers.
struct TestHookService: CaptionService {
    func caption(_ request: CaptionRequest, checkpoint: () throws -> Void) throws -> CaptionResponse {
        for _ in 0..<Int(request.options.maxNewTokens ?? 3) {
            try checkpoint()
            Thread.sleep(forTimeInterval: 0.005)
        }
        try checkpoint()
        let text = "\(request.prompt ?? "a picture") of \(request.image.data.count) bytes"
        return CaptionResponse(candidates: [.init(text: text, tokenIDs: [30522, 102], score: -1)],
                               modelID: "test/fake-service")
    }

    func describe() -> InfoResponse {
        InfoResponse(modelID: "test/fake-service", engineVersion: "test hook", defaults: .documentedDefaults)
    }

    func warmUp() throws {
        Thread.sleep(forTimeInterval: 0.05)
    }
}
