import BLIPProtocol
import Foundation

/// What every connection shares: admission (which holds the service), the counters, the
/// incoming-frame budget, the draining flag and the set of open connections.
final class ServerContext: Sendable {
    let configuration: ServerConfiguration
    let admission: Admission
    let statistics = ServerStatistics()
    let metrics = ServerMetrics()
    /// When the server was made, in seconds since the Unix epoch (`/v1/models`' `created`).
    let startedUnix = Int(Date().timeIntervalSince1970)
    let budget: IncomingBudget

    private struct State {
        var draining = false
        var connections: [Int: ConnectionGate] = [:]
        /// Connections counted against `--max-connections` (refused peers are not), RPC and HTTP.
        var counted = 0
        /// Connections that hold the daemon up under `--idle-exit` (``ConnectionGate``).
        var active: Set<Int> = []
        var nextConnectionID = 1
        /// Since when no connection has held the daemon up (for --idle-exit); `nil` while one does.
        var idleSince: ContinuousClock.Instant? = .now
    }
    private let state = LockedState(State())

    init(service: any CaptionService, configuration: ServerConfiguration) {
        self.configuration = configuration
        self.admission = Admission(service: service, capacity: configuration.queueDepth)
        self.budget = IncomingBudget(limit: configuration.maxBufferedBytes)
    }

    func log(_ line: String) { configuration.log(line) }

    /// Counts one answered call for Info and for Prometheus; `latency` and `response` for captions.
    func record(method: String, _ code: StatusCode, latency: Duration?, response: CaptionResponse? = nil) {
        statistics.record(code, latency: latency)
        metrics.recordCall(method: method, code: code, latency: latency, response: response)
    }

    /// Whether shutdown has begun: health says NOT_SERVING, captions get UNAVAILABLE.
    var isDraining: Bool { state.withLock { $0.draining } }

    func beginDraining() { state.withLock { $0.draining = true } }

    /// A new connection's id.
    func nextConnectionID() -> Int {
        state.withLock { state in
            state.nextConnectionID += 1
            return state.nextConnectionID - 1
        }
    }

    /// Records an open connection (for shutdown, `/metrics` and idleness).
    func register(_ connection: ConnectionGate) {
        state.withLock { $0.connections[connection.id] = connection }
    }

    /// Counts one more connection against `--max-connections` (RPC and HTTP share it: each holds
    /// a descriptor and buffers); `false` when the limit is reached.
    func admitCounted() -> Bool {
        state.withLock { state in
            guard state.counted < configuration.maxConnections else { return false }
            state.counted += 1
            return true
        }
    }

    /// Whether `connection` holds the daemon up under `--idle-exit` now.
    func setKeepsDaemonUp(_ connection: ConnectionGate, _ active: Bool) {
        state.withLock { state in
            if active {
                state.active.insert(connection.id)
                state.idleSince = nil
            } else if state.active.remove(connection.id) != nil, state.active.isEmpty {
                state.idleSince = .now
            }
        }
    }

    /// Connections open now, by protocol (for `/metrics`).
    var connectionCounts: (rpc: Int, http: Int) {
        state.withLock { state in
            let http = state.connections.values.filter { $0.role == .http }.count
            return (state.connections.count - http, http)
        }
    }

    func closed(_ connection: ConnectionGate, counted: Bool) {
        state.withLock { state in
            state.connections[connection.id] = nil
            if counted { state.counted -= 1 }
            if state.active.remove(connection.id) != nil, state.active.isEmpty { state.idleSince = .now }
        }
    }

    var openConnections: [ConnectionGate] { state.withLock { Array($0.connections.values) } }

    /// How long no connection has held the daemon up, or `nil` while one does.
    func idleDuration(now: ContinuousClock.Instant = .now) -> Duration? {
        state.withLock { $0.idleSince.map { now - $0 } }
    }

    // MARK: Immediate answers

    func health(_ request: HealthCheckRequest) -> HealthCheckResponse {
        let known = request.service.isEmpty || RPCMethod.allCases.contains { $0.service == request.service }
        guard known else { return HealthCheckResponse(status: .serviceUnknown) }
        return HealthCheckResponse(status: isDraining ? .notServing : .serving)
    }

    func info() -> InfoResponse {
        var info = admission.service.describe()
        info.limits.maxFrameBytes = UInt64(configuration.maxFrameBytes)
        info.limits.maxQueueDepth = UInt32(clamping: admission.capacity)
        info.counters = statistics.counters(queueDepth: admission.depth)
        return info
    }

    /// The `STATUS=` line for systemd.
    func statusLine() -> String {
        let depth = admission.depth
        let served = statistics.captionsServed
        let connections = state.withLock { $0.connections.count }  // RPC and HTTP
        if isDraining {
            return "draining: \(depth) call(s) in flight, \(served) captions served"
        }
        return "serving: \(served) captions served, queue \(depth)/\(admission.capacity), \(connections) connection(s)"
    }
}
