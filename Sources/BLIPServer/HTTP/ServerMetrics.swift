import BLIPProtocol
import Foundation
import Prometheus

/// The daemon's Prometheus metrics (`GET /metrics`), in the swift-prometheus registry: every name
/// has the `blip_captiond_` prefix, base units and Prometheus's suffixes, and HELP text (which
/// `promtool check metrics` asks for; swift-metrics' API has no place for it, so the registry is
/// used directly).
///
/// Counters and histograms are fed as calls finish (``recordCall(method:code:latency:timings:)``);
/// gauges and the values only the engine knows (queue depth, connections, feature cache) are read
/// when Prometheus scrapes (``exposition(_:)``).
final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()

    /// Buckets for seconds-long captions on a CPU (BLIP-large takes ~4–6 s; the tiny test models
    /// milliseconds).
    static let secondsBuckets: [Duration] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 60]
        .map { Duration.milliseconds(Int64($0 * 1000)) }

    private let latency: DurationHistogram
    private let stages: [String: DurationHistogram]
    private let queueDepth: Gauge
    private let waiting: Gauge
    private let running: Gauge
    private let connections: [String: Gauge]
    private let generatedTokens: Counter
    private let cacheHits: Counter
    private let cacheMisses: Counter
    /// The engine's cache counters as last read, and which service they came from.
    private let counted = LockedState((generation: 0, hits: UInt64(0), misses: UInt64(0)))
    /// The `build_info` series shown now, by its labels: one series, the served model's.
    private let buildInfo = LockedState<(labels: [String], gauge: Gauge)?>(nil)
    private let startTime: Gauge

    init() {
        latency = registry.makeDurationHistogram(
            name: "blip_captiond_caption_duration_seconds", buckets: Self.secondsBuckets,
            help: "Caption calls from reading the request to writing the answer, in seconds.")
        var stages: [String: DurationHistogram] = [:]
        for stage in ["queue_wait", "image_decode", "vision", "text"] {
            stages[stage] = registry.makeDurationHistogram(
                name: "blip_captiond_caption_stage_duration_seconds", labels: [("stage", stage)], buckets: Self.secondsBuckets,
                help: "Time one caption call spent in each stage, in seconds: queue_wait (waiting for the engine), image_decode (decode, EXIF, resize, normalise), vision (the vision encoder), text (the text decoder). Cache hits skip image_decode and vision.")
        }
        self.stages = stages
        queueDepth = registry.makeGauge(name: "blip_captiond_queue_depth", help: "Caption calls admitted and not yet answered (waiting for the engine or running), out of --queue-depth.")
        waiting = registry.makeGauge(name: "blip_captiond_captions_waiting", help: "Caption calls the engine holds and has not started.")
        running = registry.makeGauge(name: "blip_captiond_captions_in_flight", help: "Caption calls the engine is encoding or generating now.")
        let registry = self.registry
        connections = ["rpc", "http"].reduce(into: [:]) { gauges, name in
            gauges[name] = registry.makeGauge(name: "blip_captiond_connections_open", labels: [("protocol", name)],
                                              help: "Connections open now, by protocol: rpc (the caption API's sockets) or http (this face). Both count against --max-connections.")
        }
        generatedTokens = registry.makeCounter(name: "blip_captiond_generated_tokens_total", help: "Tokens generated for answered captions (every returned candidate, the final [SEP] included).")
        cacheHits = registry.makeCounter(name: "blip_captiond_feature_cache_hits_total", help: "Caption calls whose image features came from the feature cache.")
        cacheMisses = registry.makeCounter(name: "blip_captiond_feature_cache_misses_total", help: "Caption calls that looked the image up in the feature cache and encoded it.")
        startTime = registry.makeGauge(name: "blip_captiond_process_start_time_seconds", help: "When the daemon started, in seconds since the Unix epoch.")
        startTime.set(Date().timeIntervalSince1970)
    }

    /// Counts one finished call (any method) and, for captions, its latency and stages.
    func recordCall(method: String, code: StatusCode, latency: Duration?, response: CaptionResponse? = nil) {
        let known = RPCMethod(rawValue: method)?.rawValue ?? "unknown"
        registry.makeCounter(name: "blip_captiond_requests_total", labels: [("method", known), ("code", code.name)],
                             help: "Calls answered, by method and status code.").increment()
        if let latency { self.latency.record(latency) }
        if let response {
            let tokens = response.promptResults(prompt: nil).flatMap(\.candidates).reduce(0) { $0 + Int64($1.generatedTokens) }
            generatedTokens.increment(by: tokens)
        }
        if let t = response?.timings {
            stages["queue_wait"]?.record(.microseconds(Int64(t.queueWaitMicroseconds)))
            if !t.featureCacheHit {
                stages["image_decode"]?.record(.microseconds(Int64(t.imageDecodeMicroseconds)))
                stages["vision"]?.record(.microseconds(Int64(t.visionMicroseconds)))
            }
            stages["text"]?.record(.microseconds(Int64(t.textMicroseconds)))
        }
    }

    /// The text format Prometheus scrapes, with the gauges and the engine's counters read now.
    func exposition(_ context: ServerContext) -> [UInt8] {
        let (service, generation) = context.admission.serviceAndGeneration
        let info = service.describe()
        queueDepth.set(Double(context.admission.depth))
        let load = service.load()
        waiting.set(Double(load.waiting))
        running.set(Double(load.running))
        let open = context.connectionCounts
        connections["rpc"]?.set(Double(open.rpc))
        connections["http"]?.set(Double(open.http))
        counted.withLock { last in
            // A reloaded engine counts from 0 again: its counts add to the totals from there.
            if last.generation != generation { last = (generation, 0, 0) }
            let cache = info.featureCache
            if cache.hits > last.hits { cacheHits.increment(by: Int64(cache.hits - last.hits)) }
            if cache.misses > last.misses { cacheMisses.increment(by: Int64(cache.misses - last.misses)) }
            last = (generation, max(last.hits, cache.hits), max(last.misses, cache.misses))
        }
        let labels = [("version", info.engineVersion), ("model_id", info.modelID),
                      ("model_revision", info.modelRevision), ("weights", info.weightsPrecision),
                      ("instruction_path", info.instructionPath)]
        buildInfo.withLock { shown in
            let values = labels.map(\.1)
            guard shown?.labels != values else { return }
            if let old = shown?.gauge { registry.unregisterGauge(old) }
            let gauge = registry.makeGauge(name: "blip_captiond_build_info", labels: labels,
                                           help: "Always 1: what this daemon runs, in its labels.")
            gauge.set(to: 1.0)
            shown = (values, gauge)
        }
        return registry.emitToBuffer()
    }
}
