import Testing
@testable import BLIPProtocol

/// Several prompts per call, results per prompt, finish reasons, and Info's cache and engine fields.
@Suite struct MultiPromptMessageTests {
    @Test func promptsRoundTripInOrderWithTheUnconditionalOne() throws {
        let request = CaptionRequest(image: .init(data: [1, 2, 3]), prompts: ["", "a picture of", "a photo of"])
        let decoded = try CaptionRequest(decoding: request.encoded())
        #expect(decoded.prompts == ["", "a picture of", "a photo of"])
        #expect(decoded.prompt == nil)
        #expect(decoded.requestedPrompts == ["", "a picture of", "a photo of"])
        #expect(CaptionRequest(prompt: "x").requestedPrompts == ["x"])
        #expect(CaptionRequest().requestedPrompts == [nil])
    }

    @Test func aSinglePromptRequestEncodesAsBefore() {
        // Old clients send only `prompt`: the bytes must not change with the new field.
        let request = CaptionRequest(image: .init(data: [9]), prompt: "a")
        #expect(request.encoded() == [0x0A, 0x03, 0x0A, 0x01, 0x09, 0x12, 0x01, 0x61])
    }

    @Test func resultsAndFinishReasonsRoundTrip() throws {
        let eos = CaptionResponse.Candidate(text: "a cat", tokenIDs: [30522, 1037, 4937, 102], score: -0.5, finishReason: .eos)
        let cut = CaptionResponse.Candidate(text: "a picture of a", tokenIDs: [30522, 1037, 3861, 1997, 1037], score: -1.25, finishReason: .length)
        let response = CaptionResponse(
            modelID: "m", timings: .init(queueWaitMicroseconds: 1, textMicroseconds: 5, featureCacheHit: true),
            results: [.init(prompt: "", candidates: [eos]), .init(prompt: "a picture of", candidates: [cut, eos])])
        let decoded = try CaptionResponse(decoding: response.encoded())
        #expect(decoded == response)
        #expect(decoded.results[1].candidates[0].finishReason == .length)
        #expect(decoded.timings.featureCacheHit)
        #expect(decoded.promptResults(prompt: nil) == response.results)
        let single = CaptionResponse(candidates: [eos])
        #expect(single.promptResults(prompt: "p") == [.init(prompt: "p", candidates: [eos])])
    }

    @Test func infoCarriesTheCacheAndTheEngineSchedule() throws {
        let info = InfoResponse(
            modelID: "m", limits: .init(maxBeams: 8, maxPrompts: 8),
            featureCache: .init(capacityBytes: 256 << 20, bytes: 4096, entries: 1, hits: 2, misses: 3),
            engine: .init(maxBatch: 4, threads: 2, encodeLanes: 2, threadsPerLane: 1, iterations: 99, batchedSteps: 7))
        let decoded = try InfoResponse(decoding: info.encoded())
        #expect(decoded == info)
        #expect(decoded.limits.maxPrompts == 8)
        #expect(decoded.featureCache.hits == 2 && decoded.engine.encodeLanes == 2)
    }
}
