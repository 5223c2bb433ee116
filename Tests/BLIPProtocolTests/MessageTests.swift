import Testing
@testable import BLIPProtocol

private let allOptions = DecodingOptions(
    numBeams: 4, maxNewTokens: 30, minNewTokens: 2, maxLength: 40, minLength: 3,
    lengthPenalty: 0.75, repetitionPenalty: 1.1, noRepeatNgramSize: 3, numReturnSequences: 2,
    earlyStopping: true, doSample: true, temperature: 0.7, topK: 0, topP: 0.9,
    seed: 0xDEAD_BEEF_CAFE, badWords: ["cat", "dog", ""]
)

/// Options whose every value is the type's zero: still set, so still sent and read back as set.
private let zeroOptions = DecodingOptions(
    numBeams: 0, maxNewTokens: 0, minNewTokens: 0, maxLength: 0, minLength: 0, lengthPenalty: 0,
    repetitionPenalty: 0, noRepeatNgramSize: 0, numReturnSequences: 0, earlyStopping: false,
    doSample: false, temperature: 0, topK: 0, topP: 0, seed: 0
)

@Test func captionRequestRoundTripsWithEveryFieldSet() throws {
    let request = CaptionRequest(
        image: .init(data: [0xFF, 0xD8, 0xFF], format: .rawRGB8, width: 640, height: 480,
                     applyEXIFOrientation: false),
        prompt: "a picture of",
        options: allOptions
    )
    let decoded = try CaptionRequest(decoding: request.encoded())
    #expect(decoded == request)
    #expect(decoded.image.appliesEXIFOrientation == false)
}

@Test func captionRequestWithNothingSetStaysUnset() throws {
    let request = CaptionRequest()
    #expect(request.encoded() == [])
    let decoded = try CaptionRequest(decoding: [])
    #expect(decoded == request)
    #expect(decoded.prompt == nil)
    #expect(decoded.options == DecodingOptions())
    #expect(decoded.options.numBeams == nil && decoded.options.temperature == nil && decoded.options.seed == nil)
    #expect(decoded.image.applyEXIFOrientation == nil && decoded.image.appliesEXIFOrientation)
}

@Test func zeroValuedOptionsStaySet() throws {
    let request = CaptionRequest(image: .init(data: [1]), prompt: "", options: zeroOptions)
    let decoded = try CaptionRequest(decoding: request.encoded())
    #expect(decoded == request)
    #expect(decoded.prompt == "")
    #expect(decoded.options.numBeams == 0 && decoded.options.doSample == false)
}

@Test func eachOptionRoundTripsAlone() throws {
    let setters: [(inout DecodingOptions) -> Void] = [
        { $0.numBeams = 5 }, { $0.maxNewTokens = 5 }, { $0.minNewTokens = 5 }, { $0.maxLength = 5 },
        { $0.minLength = 5 }, { $0.lengthPenalty = 2 }, { $0.repetitionPenalty = 2 },
        { $0.noRepeatNgramSize = 5 }, { $0.numReturnSequences = 5 }, { $0.earlyStopping = true },
        { $0.doSample = true }, { $0.temperature = 2 }, { $0.topK = 5 }, { $0.topP = 0.5 },
        { $0.seed = 5 }, { $0.badWords = ["x"] },
    ]
    for (index, set) in setters.enumerated() {
        var options = DecodingOptions()
        set(&options)
        let decoded = try CaptionRequest(decoding: CaptionRequest(options: options).encoded()).options
        #expect(decoded == options, "setter \(index)")
    }
}

@Test func captionResponseRoundTrips() throws {
    let full = CaptionResponse(
        candidates: [
            .init(text: "a dog on a beach", tokenIDs: [30522, 1037, 3899, 102], score: -0.4375),
            .init(text: "", tokenIDs: [], score: 0),
            .init(text: "ünïcødé", tokenIDs: [30522, .max], score: -12.5),
        ],
        modelID: "Salesforce/blip-image-captioning-large",
        timings: .init(queueWaitMicroseconds: 1, imageDecodeMicroseconds: 2, visionMicroseconds: 3,
                       textMicroseconds: .max)
    )
    #expect(try CaptionResponse(decoding: full.encoded()) == full)
    #expect(CaptionResponse().encoded() == [])
    #expect(try CaptionResponse(decoding: []) == CaptionResponse())
}

@Test func infoResponseRoundTrips() throws {
    let full = InfoResponse(
        modelID: "Salesforce/blip-image-captioning-large",
        model: .init(visionHiddenSize: 1024, visionLayers: 24, imageSize: 384, patchSize: 16,
                     textHiddenSize: 768, textLayers: 12, vocabSize: 30524),
        engineVersion: "0.1.0", blasCore: "SkylakeX", blasThreads: 2,
        defaults: DecodingOptions.documentedDefaults,
        limits: .init(maxFrameBytes: 16 << 20, maxImageBytes: 15 << 20, maxPixels: 50_000_000,
                      maxTokens: 512, maxBeams: 8, maxQueueDepth: 16),
        counters: .init(uptimeMicroseconds: 123_456_789,
                        requestsByStatus: [.ok: 10, .invalidArgument: 2, .deadlineExceeded: 1],
                        queueDepth: 3, latencyP50Microseconds: 2_900_000,
                        latencyP95Microseconds: 3_100_000, latencyP99Microseconds: 4_000_000),
        modelRevision: "0123abcd", weightsPrecision: "bf16", imageFormats: ["JPEG", "PNG", "WebP"],
        instructionPath: "avx512_bf16"
    )
    let decoded = try InfoResponse(decoding: full.encoded())
    #expect(decoded == full)
    #expect(decoded.defaults.seed == nil && decoded.defaults.maxNewTokens == nil)
    #expect(full.encoded() == full.encoded())  // dictionary order does not leak into the bytes
    #expect(InfoResponse().encoded() == [])
    #expect(try InfoResponse(decoding: []) == InfoResponse())
}

@Test func healthAndInfoRequestsRoundTrip() throws {
    #expect(try HealthCheckRequest(decoding: HealthCheckRequest(service: "blip.v1.Captioner").encoded()).service == "blip.v1.Captioner")
    #expect(try HealthCheckRequest(decoding: HealthCheckRequest().encoded()) == HealthCheckRequest())
    for status in HealthCheckResponse.ServingStatus.allCases {
        #expect(try HealthCheckResponse(decoding: HealthCheckResponse(status: status).encoded()).status == status)
    }
    #expect(HealthCheckResponse(status: .serving).encoded() == [0x08, 0x01])
    #expect(InfoRequest().encoded() == [])
    #expect(try InfoRequest(decoding: []) == InfoRequest())
    // A newer client's unknown field is ignored, as protobuf prescribes.
    #expect(try InfoRequest(decoding: [0x08, 0x01]) == InfoRequest())
}

@Test func garbageIsMalformedForEveryMessage() {
    let garbage: [UInt8] = [0x0F, 0x00]
    #expect(throws: MessageDecodingError.malformed(message: "CaptionRequest", byteCount: 2)) { try CaptionRequest(decoding: garbage) }
    #expect(throws: MessageDecodingError.malformed(message: "CaptionResponse", byteCount: 2)) { try CaptionResponse(decoding: garbage) }
    #expect(throws: MessageDecodingError.malformed(message: "InfoRequest", byteCount: 2)) { try InfoRequest(decoding: garbage) }
    #expect(throws: MessageDecodingError.malformed(message: "InfoResponse", byteCount: 2)) { try InfoResponse(decoding: garbage) }
    #expect(throws: MessageDecodingError.malformed(message: "HealthCheckRequest", byteCount: 2)) { try HealthCheckRequest(decoding: garbage) }
    #expect(throws: MessageDecodingError.malformed(message: "HealthCheckResponse", byteCount: 2)) { try HealthCheckResponse(decoding: garbage) }
}

@Test func wrongMessageTypeIsRefused() {
    // Field 1 is a varint in HealthCheckResponse and Envelope, length-delimited in the others:
    // protobuf-c refuses a field whose wire type contradicts the schema.
    let health = HealthCheckResponse(status: .notServing).encoded()
    #expect(throws: MessageDecodingError.malformed(message: "CaptionRequest", byteCount: health.count)) {
        try CaptionRequest(decoding: health)
    }
    #expect(throws: MessageDecodingError.malformed(message: "CaptionResponse", byteCount: health.count)) {
        try CaptionResponse(decoding: health)
    }
    let request = CaptionRequest(image: .init(data: [1])).encoded()
    #expect(throws: MessageDecodingError.malformed(message: "HealthCheckResponse", byteCount: request.count)) {
        try HealthCheckResponse(decoding: request)
    }
    let envelope = Envelope.cancel(callID: 3).encoded()
    #expect(throws: MessageDecodingError.malformed(message: "InfoResponse", byteCount: envelope.count)) {
        try InfoResponse(decoding: envelope)
    }
}

@Test func unknownEnumValuesAreInvalidFields() {
    // Image { format: 9 }
    #expect(throws: MessageDecodingError.invalidField(message: "Image", field: "format",
                                                      reason: "is 9; expected AUTO (0), JPEG (1), PNG (2) or RAW_RGB8 (3)")) {
        try CaptionRequest(decoding: [0x0A, 0x02, 0x10, 0x09])
    }
    #expect(throws: MessageDecodingError.self) { try HealthCheckResponse(decoding: [0x08, 0x04]) }
    // InfoResponse { counters { requests_by_status { code 99 } } }
    #expect(throws: MessageDecodingError.self) { try InfoResponse(decoding: [0x42, 0x04, 0x12, 0x02, 0x08, 0x63]) }
}

@Test func resolvedOptionsFollowTheDocumentedDefaults() {
    let defaults = DecodingOptions().resolved()
    #expect(defaults == DecodingOptions.documentedDefaults)
    #expect(defaults.numBeams == 3 && defaults.maxLength == 20 && defaults.minLength == 5)
    #expect(defaults.topK == 50 && defaults.topP == 1 && defaults.temperature == 1)
    #expect(defaults.doSample == false && defaults.earlyStopping == false && defaults.numReturnSequences == 1)

    // A new-token bound replaces the length bound instead of adding to it.
    let newTokens = DecodingOptions(maxNewTokens: 30, minNewTokens: 8).resolved()
    #expect(newTokens.maxLength == nil && newTokens.minLength == nil)
    #expect(newTokens.maxNewTokens == 30 && newTokens.minNewTokens == 8 && newTokens.numBeams == 3)

    // Whatever the client set wins.
    #expect(allOptions.resolved() == allOptions)
}
