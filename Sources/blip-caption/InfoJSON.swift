import BLIPClient
import Foundation

/// `blip-caption info --json`: the whole `InfoResponse` as one JSON object, its keys the field
/// names of proto/blip/v1/captioner.proto (`model_id`, `limits.max_prompts`,
/// `counters.latency_p95_us`, …). Every key is always present; a default the daemon leaves unset
/// (`max_new_tokens`, `seed`) is `null`, and `requests_by_status` is keyed by status name.
struct InfoJSON: Encodable {
    var model_id: String
    var model: Model
    var engine_version: String
    var blas_core: String
    var blas_threads: UInt32
    var defaults: Defaults
    var limits: Limits
    var counters: Counters
    var feature_cache: FeatureCache
    var engine: Engine

    init(_ info: InfoResponse) {
        model_id = info.modelID
        model = Model(info.model)
        engine_version = info.engineVersion
        blas_core = info.blasCore
        blas_threads = info.blasThreads
        defaults = Defaults(options: info.defaults)
        limits = Limits(info.limits)
        counters = Counters(info.counters)
        feature_cache = FeatureCache(info.featureCache)
        engine = Engine(info.engine)
    }

    struct Model: Encodable {
        var vision_hidden_size, vision_layers, image_size, patch_size, text_hidden_size, text_layers, vocab_size: UInt32

        init(_ m: InfoResponse.ModelSummary) {
            vision_hidden_size = m.visionHiddenSize
            vision_layers = m.visionLayers
            image_size = m.imageSize
            patch_size = m.patchSize
            text_hidden_size = m.textHiddenSize
            text_layers = m.textLayers
            vocab_size = m.vocabSize
        }
    }

    /// Written by hand so that unset options are `null` rather than missing.
    struct Defaults: Encodable {
        var options: DecodingOptions

        enum CodingKeys: String, CodingKey {
            case num_beams, max_new_tokens, min_new_tokens, max_length, min_length, length_penalty,
                 repetition_penalty, no_repeat_ngram_size, num_return_sequences, early_stopping,
                 do_sample, temperature, top_k, top_p, seed, bad_words
        }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            let o = options
            try c.encode(o.numBeams, forKey: .num_beams)
            try c.encode(o.maxNewTokens, forKey: .max_new_tokens)
            try c.encode(o.minNewTokens, forKey: .min_new_tokens)
            try c.encode(o.maxLength, forKey: .max_length)
            try c.encode(o.minLength, forKey: .min_length)
            try c.encode(o.lengthPenalty, forKey: .length_penalty)
            try c.encode(o.repetitionPenalty, forKey: .repetition_penalty)
            try c.encode(o.noRepeatNgramSize, forKey: .no_repeat_ngram_size)
            try c.encode(o.numReturnSequences, forKey: .num_return_sequences)
            try c.encode(o.earlyStopping, forKey: .early_stopping)
            try c.encode(o.doSample, forKey: .do_sample)
            try c.encode(o.temperature, forKey: .temperature)
            try c.encode(o.topK, forKey: .top_k)
            try c.encode(o.topP, forKey: .top_p)
            try c.encode(o.seed, forKey: .seed)
            try c.encode(o.badWords, forKey: .bad_words)
        }
    }

    struct Limits: Encodable {
        var max_frame_bytes, max_image_bytes, max_pixels: UInt64
        var max_tokens, max_beams, max_queue_depth, max_prompts: UInt32
        var max_jpeg_scans, max_text_bytes, max_bad_words, max_bad_word_tokens: UInt32

        init(_ l: InfoResponse.Limits) {
            max_frame_bytes = l.maxFrameBytes
            max_image_bytes = l.maxImageBytes
            max_pixels = l.maxPixels
            max_tokens = l.maxTokens
            max_beams = l.maxBeams
            max_queue_depth = l.maxQueueDepth
            max_prompts = l.maxPrompts
            max_jpeg_scans = l.maxJPEGScans
            max_text_bytes = l.maxTextBytes
            max_bad_words = l.maxBadWords
            max_bad_word_tokens = l.maxBadWordTokens
        }
    }

    struct Counters: Encodable {
        var uptime_us: UInt64
        /// `{"OK": 12, "INVALID_ARGUMENT": 1}`; codes never returned are absent.
        var requests_by_status: [String: UInt64]
        var queue_depth: UInt32
        var latency_p50_us, latency_p95_us, latency_p99_us: UInt64

        init(_ c: InfoResponse.Counters) {
            uptime_us = c.uptimeMicroseconds
            requests_by_status = Dictionary(uniqueKeysWithValues: c.requestsByStatus.map { ($0.key.name, $0.value) })
            queue_depth = c.queueDepth
            latency_p50_us = c.latencyP50Microseconds
            latency_p95_us = c.latencyP95Microseconds
            latency_p99_us = c.latencyP99Microseconds
        }
    }

    /// All zero when the cache is off.
    struct FeatureCache: Encodable {
        var capacity_bytes, bytes, entries, hits, misses: UInt64

        init(_ f: InfoResponse.FeatureCacheStats) {
            capacity_bytes = f.capacityBytes
            bytes = f.bytes
            entries = f.entries
            hits = f.hits
            misses = f.misses
        }
    }

    /// All zero from a daemon that does not report its schedule.
    struct Engine: Encodable {
        var max_batch, threads, encode_lanes, threads_per_lane: UInt32
        var iterations, batched_steps: UInt64

        init(_ e: InfoResponse.EngineSchedule) {
            max_batch = e.maxBatch
            threads = e.threads
            encode_lanes = e.encodeLanes
            threads_per_lane = e.threadsPerLane
            iterations = e.iterations
            batched_steps = e.batchedSteps
        }
    }

    /// One line of JSON, keys sorted.
    func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try encoder.encode(self)
    }
}
