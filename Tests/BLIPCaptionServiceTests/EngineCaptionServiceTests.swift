@testable import BLIPEngine
import BLIPProtocol
import BLIPServer
import BLIPTestSupport
import Foundation
import Testing
@testable import BLIPCaptionService

/// The one wire ↔ engine mapping: defaults, options, prompts, response shapes, and a call through
/// a real engine.
@Suite struct EngineCaptionServiceTests {
    static let fixtures = PackagePaths.fixtures

    static func service(featureCacheBytes: Int = 0) throws -> EngineCaptionService {
        let folder = ModelFolder(url: fixtures.appendingPathComponent("models/tiny-a"))
        return EngineCaptionService(captioner: try Captioner(folder: folder, configuration: .init(maxBatch: 4, featureCacheBytes: featureCacheBytes)))
    }

    static func image(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: fixtures.appendingPathComponent("images").appendingPathComponent(name)))
    }

    /// Info's defaults come from the engine's table, and they are the ones the protocol documents
    /// (which clients resolve unset options against).
    @Test func theDefaultsAgreeEverywhere() throws {
        for option in DecodingOption.allCases where option != .maxLength && option != .minLength {
            #expect(GenerationParameters().value(of: option) == option.row.defaultValue, "\(option)")
        }
        let unset = try EngineCaptionService.parameters(DecodingOptions(), prompt: nil)
        let resolved = try EngineCaptionService.parameters(DecodingOptions().resolved(), prompt: nil)
        #expect(unset == GenerationParameters())
        for prefix in 1...6 {
            #expect(unset.lengthBounds(prefixLength: prefix) == resolved.lengthBounds(prefixLength: prefix))
        }
        var a = unset, b = resolved
        (a.maxLength, a.minLength, b.maxLength, b.minLength) = (nil, nil, nil, nil)
        #expect(a == b, "every other resolved default is the engine's own")
        #expect(try EngineCaptionService.parameters(DecodingOptions(doSample: true), prompt: nil).numBeams == 1)
    }

    @Test func everyOptionMapsToItsParameter() throws {
        let o = DecodingOptions(numBeams: 4, maxNewTokens: 30, minNewTokens: 2, maxLength: 40, minLength: 3, lengthPenalty: 0.5,
                                repetitionPenalty: 1.25, noRepeatNgramSize: 3, numReturnSequences: 2, earlyStopping: true,
                                doSample: true, temperature: 0.75, topK: 7, topP: 0.5, seed: 9, badWords: ["cat"])
        let p = try EngineCaptionService.parameters(o, prompt: "a")
        #expect(p.numBeams == 4 && p.maxNewTokens == 30 && p.minNewTokens == 2 && p.maxLength == 40 && p.minLength == 3)
        #expect(p.lengthPenalty == 0.5 && p.repetitionPenalty == 1.25 && p.noRepeatNgramSize == 3 && p.numReturnSequences == 2)
        #expect(p.earlyStopping && p.doSample && p.temperature == 0.75 && p.topK == 7 && p.topP == 0.5 && p.seed == 9)
        #expect(p.badWords == ["cat"] && p.prompt == "a")
        #expect(try EngineCaptionService.parameters(o, prompt: "").prompt == nil, "an empty prompt is unconditional")
    }

    @Test func promptsBecomeOneEnginePromptEachAndAreChecked() throws {
        let job = try EngineCaptionService.job(CaptionRequest(image: .init(data: [1]), prompts: ["", "a picture of"]), deadline: nil)
        #expect(job.prompts.map(\.prompt) == [nil, "a picture of"])
        #expect(try EngineCaptionService.job(CaptionRequest(image: .init(data: [1]), prompt: "x"), deadline: nil).prompts.map(\.prompt) == ["x"])
        #expect(throws: RPCError.self) {
            try EngineCaptionService.job(CaptionRequest(prompt: "x", prompts: ["y"]), deadline: nil)
        }
        do {
            _ = try EngineCaptionService.job(CaptionRequest(prompts: Array(repeating: "p", count: 9)), deadline: nil)
            Issue.record("9 prompts were accepted")
        } catch {
            #expect(error.code == .invalidArgument)
        }
    }

    /// Several prompts in one call through the real engine: results in order, each equal to asking
    /// for that prompt alone; a single-prompt call is answered in `candidates` as before.
    @Test func aCallWithPromptsEqualsOneCallPerPrompt() async throws {
        let service = try Self.service()
        let image = CaptionRequest.Image(data: try Self.image("chelsea_q95_444.jpg"))
        let options = DecodingOptions(numBeams: 3, maxNewTokens: 8)
        let prompts = ["", "a picture of", "a photo of"]
        let together = try await service.caption(CaptionRequest(image: image, options: options, prompts: prompts), timeout: .seconds(60))
        #expect(together.candidates.isEmpty)
        #expect(together.results.map(\.prompt) == prompts)
        for (prompt, result) in zip(prompts, together.results) {
            let alone = try await service.caption(CaptionRequest(image: image, prompt: prompt.isEmpty ? nil : prompt, options: options),
                                                  timeout: .seconds(60))
            #expect(alone.results.isEmpty)
            #expect(result.candidates == alone.candidates, "prompt \"\(prompt)\"")
            #expect(alone.candidates.allSatisfy { $0.finishReason != .unspecified })
        }
    }

    /// A second call about the same image is a cache hit, Info counts it, and the captions are the same.
    @Test func infoReportsTheCacheAndTheSchedule() async throws {
        let service = try Self.service(featureCacheBytes: 1 << 20)
        let request = CaptionRequest(image: .init(data: try Self.image("rocket.png")), options: DecodingOptions(numBeams: 1, maxNewTokens: 5))
        let first = try await service.caption(request, timeout: .seconds(60))
        let second = try await service.caption(request, timeout: .seconds(60))
        #expect(!first.timings.featureCacheHit && second.timings.featureCacheHit)
        #expect(first.candidates == second.candidates)
        let info = service.describe()
        #expect(info.featureCache.capacityBytes == 1 << 20 && info.featureCache.entries == 1)
        #expect(info.featureCache.hits == 1 && info.featureCache.misses == 1)
        #expect(info.engine.maxBatch == 4 && info.engine.encodeLanes >= 1 && info.engine.threads >= 1)
        #expect(info.engine.iterations > 0)
        #expect(info.limits.maxPrompts == 8)
        #expect(info.defaults == DecodingOptions.documentedDefaults)
    }

    /// Cancelling the task cancels the call in the engine.
    @Test func cancellingTheTaskCancelsTheCall() async throws {
        let service = try Self.service()
        let request = CaptionRequest(image: .init(data: try Self.image("rocket.png")), options: DecodingOptions(numBeams: 8, maxNewTokens: 60))
        let task = Task { try await service.caption(request, timeout: .seconds(60)) }
        task.cancel()
        do {
            _ = try await task.value
        } catch let error as RPCError {
            #expect(error.code == .cancelled)
        }
    }
}

/// A call cancelled while its image decodes (a PNG of 40,000,000 rows: seconds of work) is
/// answered CANCELLED, not DEADLINE_EXCEEDED or INVALID_ARGUMENT, and without waiting for the decode.
@Test func aCallCancelledWhileItsImageDecodesIsAnsweredCancelled() throws {
    let service = try EngineCaptionServiceTests.service()
    let decoding = DispatchSemaphore(value: 0), answered = DispatchSemaphore(value: 0)
    service.captioner.loop.beforeEncodePiece = { _, piece in if piece == "decode" { decoding.signal() } }
    let outcome = LockedState<Result<CaptionResponse, any Error>?>(nil)
    let request = CaptionRequest(image: .init(data: HostileImages.zeroPNG(width: 1, height: 40_000_000)),
                                 options: DecodingOptions(numBeams: 1, maxNewTokens: 3))
    let ticket = try service.submit(request, deadline: .now + .seconds(60), onText: nil) { result in
        outcome.withLock { $0 = result }
        answered.signal()
    }
    decoding.wait()
    Thread.sleep(forTimeInterval: 0.1)
    let cancelled = ContinuousClock.now
    service.cancel(ticket)
    #expect(answered.wait(timeout: .now() + 0.5) == .success, "the cancel waited for the decode")
    print("measured: a cancel during the image decode answered in \(ContinuousClock.now - cancelled)")
    guard case .failure(let error) = try #require(outcome.withLock { $0 }) else {
        Issue.record("the cancelled call was answered with captions")
        return
    }
    #expect(RPCError(mapping: error).code == .cancelled, "\(error)")
}

/// The engine's stop reasons keep their status wherever they are met.
@Test func stopReasonsMapToTheirStatuses() {
    #expect(CaptionJobError.cancelled.rpcError.code == .cancelled)
    #expect(CaptionJobError.deadlineExceeded.rpcError.code == .deadlineExceeded)
    #expect(ImageError.cancelled.rpcError.code == .cancelled)
    #expect(ImageError.deadlineExceeded.rpcError.code == .deadlineExceeded)
}

/// Over-limit images are reported as the caller meets them.
@Test func overLimitImagesSayWhatWasSentAndWhatIsAccepted() {
    let bytes = ImageError.tooManyBytes(count: 48_000_000, limit: 32 << 20).rpcError
    #expect(bytes.code == .resourceExhausted)
    #expect(bytes.message.hasPrefix("image of 45.8 MiB; this daemon accepts up to 32 MiB (--max-image-bytes)"), "\(bytes.message)")
    let pixels = ImageError.tooManyPixels(width: 65500, height: 65500, limit: 40_000_000).rpcError
    #expect(pixels.message.hasPrefix("image of 65500×65500 pixels; this daemon accepts up to 40000000 pixels (--max-pixels)"), "\(pixels.message)")
}

/// The model's identity in Info and in every response: a hub snapshot's revision, else the weights
/// header's digest, then the weights file read; and the decode weights' precision.
@Test func infoAndResponsesNameTheCheckpointsRevision() async throws {
    let service = try EngineCaptionServiceTests.service()
    let info = service.describe()
    #expect(info.modelRevision.hasPrefix("sha256:") && info.modelRevision.hasSuffix(" (model.safetensors)")
            && info.modelRevision.count == 7 + 16 + " (model.safetensors)".count, "\(info.modelRevision)")
    #expect(info.weightsPrecision == "fp32")
    #expect(["avx2", "avx512"].contains(info.instructionPath))
    let response = try await service.caption(
        CaptionRequest(image: .init(data: try EngineCaptionServiceTests.image("rocket.png")), options: DecodingOptions(numBeams: 1, maxNewTokens: 3)),
        timeout: .seconds(30))
    #expect(response.modelRevision == info.modelRevision)
    #expect(response.candidates.allSatisfy { $0.generatedTokens >= 1 && $0.generatedTokens <= 3 })
    let other = try EngineCaptionService(captioner: Captioner(folder: ModelFolder(url: EngineCaptionServiceTests.fixtures.appendingPathComponent("models/tiny-b"))))
    #expect(other.describe().modelRevision != info.modelRevision, "another checkpoint, another revision")
    let snapshot = URL(fileURLWithPath: "/cache/hub/models--Salesforce--blip-image-captioning-large/snapshots/353689b859fcf0523410b1806dace5fb46ecdf41")
    #expect(BlipModel.snapshotRevision(snapshot) == "353689b859fcf0523410b1806dace5fb46ecdf41")
}
