import BlipProtoC

/// `/blip.v1.Captioner/Info`'s response: what the server runs, its defaults and limits, and
/// counters since it started.
public struct InfoResponse: Sendable, Hashable {
    /// The loaded model's shape.
    public struct ModelSummary: Sendable, Hashable {
        public var visionHiddenSize: UInt32
        public var visionLayers: UInt32
        /// Input side in pixels; every image is resized to `imageSize × imageSize`.
        public var imageSize: UInt32
        public var patchSize: UInt32
        public var textHiddenSize: UInt32
        public var textLayers: UInt32
        public var vocabSize: UInt32

        public init(
            visionHiddenSize: UInt32 = 0, visionLayers: UInt32 = 0, imageSize: UInt32 = 0,
            patchSize: UInt32 = 0, textHiddenSize: UInt32 = 0, textLayers: UInt32 = 0,
            vocabSize: UInt32 = 0
        ) {
            self.visionHiddenSize = visionHiddenSize
            self.visionLayers = visionLayers
            self.imageSize = imageSize
            self.patchSize = patchSize
            self.textHiddenSize = textHiddenSize
            self.textLayers = textLayers
            self.vocabSize = vocabSize
        }
    }

    /// The largest requests the server accepts.
    public struct Limits: Sendable, Hashable {
        /// Payload bytes of one frame.
        public var maxFrameBytes: UInt64
        /// Bytes of `Image.data`.
        public var maxImageBytes: UInt64
        /// `width × height` of the decoded image.
        public var maxPixels: UInt64
        /// Sequence length, `[DEC]` and prompt included.
        public var maxTokens: UInt32
        /// `numBeams`, and `numReturnSequences`.
        public var maxBeams: UInt32
        /// Calls waiting or running at once.
        public var maxQueueDepth: UInt32
        /// Entries of `CaptionRequest.prompts`.
        public var maxPrompts: UInt32
        /// Scans of a progressive JPEG (0: not reported, an older server).
        public var maxJPEGScans: UInt32
        /// UTF-8 bytes of a prompt and of each bad word (0: not reported).
        public var maxTextBytes: UInt32
        /// Entries of `DecodingOptions.badWords` (0: not reported).
        public var maxBadWords: UInt32
        /// Tokens of each bad word (0: not reported).
        public var maxBadWordTokens: UInt32

        public init(
            maxFrameBytes: UInt64 = 0, maxImageBytes: UInt64 = 0, maxPixels: UInt64 = 0,
            maxTokens: UInt32 = 0, maxBeams: UInt32 = 0, maxQueueDepth: UInt32 = 0, maxPrompts: UInt32 = 0,
            maxJPEGScans: UInt32 = 0, maxTextBytes: UInt32 = 0, maxBadWords: UInt32 = 0, maxBadWordTokens: UInt32 = 0
        ) {
            self.maxPrompts = maxPrompts
            self.maxJPEGScans = maxJPEGScans
            self.maxTextBytes = maxTextBytes
            self.maxBadWords = maxBadWords
            self.maxBadWordTokens = maxBadWordTokens
            self.maxFrameBytes = maxFrameBytes
            self.maxImageBytes = maxImageBytes
            self.maxPixels = maxPixels
            self.maxTokens = maxTokens
            self.maxBeams = maxBeams
            self.maxQueueDepth = maxQueueDepth
        }
    }

    /// What the server has done since it started.
    public struct Counters: Sendable, Hashable {
        public var uptimeMicroseconds: UInt64
        /// Completed calls by status code; codes never returned are absent.
        public var requestsByStatus: [StatusCode: UInt64]
        /// Calls waiting or running now.
        public var queueDepth: UInt32
        /// Latency of completed Caption calls, request read to response written.
        public var latencyP50Microseconds: UInt64
        public var latencyP95Microseconds: UInt64
        public var latencyP99Microseconds: UInt64

        public init(
            uptimeMicroseconds: UInt64 = 0, requestsByStatus: [StatusCode: UInt64] = [:],
            queueDepth: UInt32 = 0, latencyP50Microseconds: UInt64 = 0,
            latencyP95Microseconds: UInt64 = 0, latencyP99Microseconds: UInt64 = 0
        ) {
            self.uptimeMicroseconds = uptimeMicroseconds
            self.requestsByStatus = requestsByStatus
            self.queueDepth = queueDepth
            self.latencyP50Microseconds = latencyP50Microseconds
            self.latencyP95Microseconds = latencyP95Microseconds
            self.latencyP99Microseconds = latencyP99Microseconds
        }
    }

    /// The image-feature cache; all zero when it is off.
    public struct FeatureCacheStats: Sendable, Hashable {
        public var capacityBytes: UInt64
        public var bytes: UInt64
        public var entries: UInt64
        public var hits: UInt64
        public var misses: UInt64

        public init(capacityBytes: UInt64 = 0, bytes: UInt64 = 0, entries: UInt64 = 0, hits: UInt64 = 0, misses: UInt64 = 0) {
            self.capacityBytes = capacityBytes
            self.bytes = bytes
            self.entries = entries
            self.hits = hits
            self.misses = misses
        }
    }

    /// How the engine loop shares the cores.
    public struct EngineSchedule: Sendable, Hashable {
        /// Prompts decoded together at most (`--max-batch`).
        public var maxBatch: UInt32
        /// Threads the engine computes with.
        public var threads: UInt32
        /// Images encoded side by side at most when several wait, and the threads of each.
        public var encodeLanes: UInt32
        public var threadsPerLane: UInt32
        /// Loop iterations, and decode steps that served more than one prompt, since start.
        public var iterations: UInt64
        public var batchedSteps: UInt64

        public init(maxBatch: UInt32 = 0, threads: UInt32 = 0, encodeLanes: UInt32 = 0, threadsPerLane: UInt32 = 0,
                    iterations: UInt64 = 0, batchedSteps: UInt64 = 0) {
            self.maxBatch = maxBatch
            self.threads = threads
            self.encodeLanes = encodeLanes
            self.threadsPerLane = threadsPerLane
            self.iterations = iterations
            self.batchedSteps = batchedSteps
        }
    }

    /// e.g. `"Salesforce/blip-image-captioning-large"`.
    public var modelID: String
    public var model: ModelSummary
    /// The blip-captiond version.
    public var engineVersion: String
    /// The OpenBLAS kernel in use, e.g. `"SkylakeX"`.
    public var blasCore: String
    public var blasThreads: UInt32
    /// The defaults unset request options take, every applicable field set.
    public var defaults: DecodingOptions
    public var limits: Limits
    public var counters: Counters
    public var featureCache: FeatureCacheStats
    public var engine: EngineSchedule
    /// The checkpoint's version: the Hugging Face snapshot revision, or `sha256:` and the start of
    /// the weights header's digest.
    public var modelRevision: String
    /// The precision the model computes in: `fp32`, `bf16` or `int8` (`--precision`).
    public var weightsPrecision: String
    /// The instructions that precision's products run on here: `avx2`, `avx512`, `avx2_vnni`,
    /// `avx512_vnni`, `avx512_bf16` or `amx`.
    public var instructionPath: String
    /// The image formats Caption reads, recognised by content (`JPEG`, `PNG`, `WebP`, …).
    public var imageFormats: [String]

    public init(
        modelID: String = "", model: ModelSummary = ModelSummary(), engineVersion: String = "",
        blasCore: String = "", blasThreads: UInt32 = 0, defaults: DecodingOptions = DecodingOptions(),
        limits: Limits = Limits(), counters: Counters = Counters(),
        featureCache: FeatureCacheStats = FeatureCacheStats(), engine: EngineSchedule = EngineSchedule(),
        modelRevision: String = "", weightsPrecision: String = "", imageFormats: [String] = [],
        instructionPath: String = ""
    ) {
        self.imageFormats = imageFormats
        self.instructionPath = instructionPath
        self.modelRevision = modelRevision
        self.weightsPrecision = weightsPrecision
        self.featureCache = featureCache
        self.engine = engine
        self.modelID = modelID
        self.model = model
        self.engineVersion = engineVersion
        self.blasCore = blasCore
        self.blasThreads = blasThreads
        self.defaults = defaults
        self.limits = limits
        self.counters = counters
    }
}

extension InfoResponse: WireMessage {
    public static let messageName = "InfoResponse"

    public init(decoding bytes: [UInt8]) throws(MessageDecodingError) {
        self = try ProtobufC.decode(
            bytes, descriptor: blip__v1__info_response__descriptor,
            unpack: { blip__v1__info_response__unpack(nil, $0, $1) },
            free: { blip__v1__info_response__free_unpacked($0, nil) },
            read: { (c: borrowing Blip__V1__InfoResponse) throws(MessageDecodingError) in
                try InfoResponse(c)
            }
        )
    }

    public func encoded() -> [UInt8] {
        CArena.with { arena in
            var c = Blip__V1__InfoResponse()
            blip__v1__info_response__init(&c)
            c.model_id = arena.optionalCString(modelID.isEmpty ? nil : modelID)
            if model != ModelSummary() { c.model = arena.store(model.cMessage) }
            c.engine_version = arena.optionalCString(engineVersion.isEmpty ? nil : engineVersion)
            c.blas_core = arena.optionalCString(blasCore.isEmpty ? nil : blasCore)
            if blasThreads != 0 { c.has_blas_threads = 1; c.blas_threads = blasThreads }
            c.defaults = defaults.cMessage(in: arena)
            if limits != Limits() { c.limits = arena.store(limits.cMessage) }
            if counters != Counters() { c.counters = arena.store(counters.cMessage(in: arena)) }
            if featureCache != FeatureCacheStats() { c.feature_cache = arena.store(featureCache.cMessage) }
            if engine != EngineSchedule() { c.engine = arena.store(engine.cMessage) }
            c.model_revision = arena.optionalCString(modelRevision.isEmpty ? nil : modelRevision)
            c.weights_precision = arena.optionalCString(weightsPrecision.isEmpty ? nil : weightsPrecision)
            c.instruction_path = arena.optionalCString(instructionPath.isEmpty ? nil : instructionPath)
            c.n_image_formats = imageFormats.count
            c.image_formats = arena.array(imageFormats.map { Optional(arena.cString($0)) })
            return ProtobufC.encode(
                c,
                packedSize: { blip__v1__info_response__get_packed_size($0) },
                pack: { blip__v1__info_response__pack($0, $1) }
            )
        }
    }

    private init(_ c: borrowing Blip__V1__InfoResponse) throws(MessageDecodingError) {
        let name = Self.messageName
        var imageFormats: [String] = []
        for i in 0..<c.n_image_formats {
            imageFormats.append(try ProtobufC.string(c.image_formats[i], message: name, field: "image_formats"))
        }
        self.init(
            modelID: try ProtobufC.string(c.model_id, message: name, field: "model_id"),
            model: c.model.map { ModelSummary($0.pointee) } ?? ModelSummary(),
            engineVersion: try ProtobufC.string(c.engine_version, message: name, field: "engine_version"),
            blasCore: try ProtobufC.string(c.blas_core, message: name, field: "blas_core"),
            blasThreads: c.blas_threads,
            defaults: try DecodingOptions(c.defaults),
            limits: c.limits.map { Limits($0.pointee) } ?? Limits(),
            counters: try c.counters.map { (p) throws(MessageDecodingError) in try Counters(p.pointee) } ?? Counters(),
            featureCache: c.feature_cache.map { FeatureCacheStats($0.pointee) } ?? FeatureCacheStats(),
            engine: c.engine.map { EngineSchedule($0.pointee) } ?? EngineSchedule(),
            modelRevision: try ProtobufC.string(c.model_revision, message: name, field: "model_revision"),
            weightsPrecision: try ProtobufC.string(c.weights_precision, message: name, field: "weights_precision"),
            imageFormats: imageFormats,
            instructionPath: try ProtobufC.string(c.instruction_path, message: name, field: "instruction_path")
        )
    }
}

// The sub-messages' C mappings. Their fields have no "unset" meaning: a sub-message that is not
// all zero is written whole, and an absent field reads as zero.

extension InfoResponse.ModelSummary {
    init(_ c: Blip__V1__ModelSummary) {
        self.init(
            visionHiddenSize: c.vision_hidden_size, visionLayers: c.vision_layers,
            imageSize: c.image_size, patchSize: c.patch_size, textHiddenSize: c.text_hidden_size,
            textLayers: c.text_layers, vocabSize: c.vocab_size
        )
    }

    var cMessage: Blip__V1__ModelSummary {
        var c = Blip__V1__ModelSummary()
        blip__v1__model_summary__init(&c)
        c.has_vision_hidden_size = 1; c.vision_hidden_size = visionHiddenSize
        c.has_vision_layers = 1; c.vision_layers = visionLayers
        c.has_image_size = 1; c.image_size = imageSize
        c.has_patch_size = 1; c.patch_size = patchSize
        c.has_text_hidden_size = 1; c.text_hidden_size = textHiddenSize
        c.has_text_layers = 1; c.text_layers = textLayers
        c.has_vocab_size = 1; c.vocab_size = vocabSize
        return c
    }
}

extension InfoResponse.Limits {
    init(_ c: Blip__V1__Limits) {
        self.init(
            maxFrameBytes: c.max_frame_bytes, maxImageBytes: c.max_image_bytes,
            maxPixels: c.max_pixels, maxTokens: c.max_tokens, maxBeams: c.max_beams,
            maxQueueDepth: c.max_queue_depth, maxPrompts: c.max_prompts,
            maxJPEGScans: c.max_jpeg_scans, maxTextBytes: c.max_text_bytes, maxBadWords: c.max_bad_words,
            maxBadWordTokens: c.max_bad_word_tokens
        )
    }

    var cMessage: Blip__V1__Limits {
        var c = Blip__V1__Limits()
        blip__v1__limits__init(&c)
        c.has_max_frame_bytes = 1; c.max_frame_bytes = maxFrameBytes
        c.has_max_image_bytes = 1; c.max_image_bytes = maxImageBytes
        c.has_max_pixels = 1; c.max_pixels = maxPixels
        c.has_max_tokens = 1; c.max_tokens = maxTokens
        c.has_max_beams = 1; c.max_beams = maxBeams
        c.has_max_queue_depth = 1; c.max_queue_depth = maxQueueDepth
        c.has_max_prompts = 1; c.max_prompts = maxPrompts
        c.has_max_jpeg_scans = 1; c.max_jpeg_scans = maxJPEGScans
        c.has_max_text_bytes = 1; c.max_text_bytes = maxTextBytes
        c.has_max_bad_words = 1; c.max_bad_words = maxBadWords
        c.has_max_bad_word_tokens = 1; c.max_bad_word_tokens = maxBadWordTokens
        return c
    }
}

extension InfoResponse.Counters {
    init(_ c: Blip__V1__Counters) throws(MessageDecodingError) {
        var byStatus: [StatusCode: UInt64] = [:]
        for i in 0..<c.n_requests_by_status {
            guard let entry = c.requests_by_status[i]?.pointee else { continue }
            guard let code = StatusCode(rawValue: entry.code) else {
                throw .invalidField(message: "StatusCount", field: "code",
                                    reason: "is \(entry.code); expected a status code 0…16")
            }
            byStatus[code, default: 0] += entry.count
        }
        self.init(
            uptimeMicroseconds: c.uptime_us, requestsByStatus: byStatus, queueDepth: c.queue_depth,
            latencyP50Microseconds: c.latency_p50_us, latencyP95Microseconds: c.latency_p95_us,
            latencyP99Microseconds: c.latency_p99_us
        )
    }

    func cMessage(in arena: CArena) -> Blip__V1__Counters {
        var c = Blip__V1__Counters()
        blip__v1__counters__init(&c)
        c.has_uptime_us = 1; c.uptime_us = uptimeMicroseconds
        // Sorted by code, so equal counters always encode to equal bytes.
        let entries = requestsByStatus.sorted { $0.key.rawValue < $1.key.rawValue }.map { code, count in
            var entry = Blip__V1__StatusCount()
            blip__v1__status_count__init(&entry)
            entry.has_code = 1; entry.code = code.rawValue
            entry.has_count = 1; entry.count = count
            return Optional(arena.store(entry))
        }
        c.n_requests_by_status = entries.count
        c.requests_by_status = arena.array(entries)
        c.has_queue_depth = 1; c.queue_depth = queueDepth
        c.has_latency_p50_us = 1; c.latency_p50_us = latencyP50Microseconds
        c.has_latency_p95_us = 1; c.latency_p95_us = latencyP95Microseconds
        c.has_latency_p99_us = 1; c.latency_p99_us = latencyP99Microseconds
        return c
    }
}

extension InfoResponse.FeatureCacheStats {
    init(_ c: Blip__V1__FeatureCacheStats) {
        self.init(capacityBytes: c.capacity_bytes, bytes: c.bytes, entries: c.entries, hits: c.hits, misses: c.misses)
    }

    var cMessage: Blip__V1__FeatureCacheStats {
        var c = Blip__V1__FeatureCacheStats()
        blip__v1__feature_cache_stats__init(&c)
        c.has_capacity_bytes = 1; c.capacity_bytes = capacityBytes
        c.has_bytes = 1; c.bytes = bytes
        c.has_entries = 1; c.entries = entries
        c.has_hits = 1; c.hits = hits
        c.has_misses = 1; c.misses = misses
        return c
    }
}

extension InfoResponse.EngineSchedule {
    init(_ c: Blip__V1__EngineSchedule) {
        self.init(maxBatch: c.max_batch, threads: c.threads, encodeLanes: c.encode_lanes,
                  threadsPerLane: c.threads_per_lane, iterations: c.iterations, batchedSteps: c.batched_steps)
    }

    var cMessage: Blip__V1__EngineSchedule {
        var c = Blip__V1__EngineSchedule()
        blip__v1__engine_schedule__init(&c)
        c.has_max_batch = 1; c.max_batch = maxBatch
        c.has_threads = 1; c.threads = threads
        c.has_encode_lanes = 1; c.encode_lanes = encodeLanes
        c.has_threads_per_lane = 1; c.threads_per_lane = threadsPerLane
        c.has_iterations = 1; c.iterations = iterations
        c.has_batched_steps = 1; c.batched_steps = batchedSteps
        return c
    }
}

extension InfoResponse.Limits {
    /// The limits the option table's ranges depend on; a limit the daemon leaves at 0 (unset) is unknown.
    public var optionLimits: OptionLimits {
        func known(_ value: UInt32) -> Int? { value == 0 ? nil : Int(value) }
        return OptionLimits(maxBeams: known(maxBeams), maxTokens: known(maxTokens), maxBadWords: known(maxBadWords),
                            maxTextBytes: known(maxTextBytes))
    }
}
