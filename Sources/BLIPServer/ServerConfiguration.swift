import BLIPProtocol

/// How a ``CaptionServer`` behaves: limits, shutdown timing, access control and where its
/// events go. Every field has a sane default.
public struct ServerConfiguration: Sendable {
    /// The largest frame payload a client may send; a longer length prefix gets
    /// `RESOURCE_EXHAUSTED` with call id 0 and the connection is closed. Default 32 MiB + 256 KiB,
    /// so the largest image the engine accepts by default (32 MiB) fits with its envelope.
    public var maxFrameBytes: Int = (32 << 20) + (256 << 10)
    /// Connections open at once (peers refused by the allow-lists do not count); one more is
    /// answered `RESOURCE_EXHAUSTED` (call id 0) and closed. Each costs a descriptor. Default 256.
    public var maxConnections: Int = 256
    /// How long a peer may leave a request unfinished (a frame half-sent, an HTTP head or body not
    /// yet whole; restarted by every read) before the connection is closed (a stalled or malicious
    /// client must not hold a connection forever). Idle connections between requests are not
    /// affected. Default 30 s.
    public var partialFrameTimeout: Duration = .seconds(30)
    /// Connections with no call in flight and no half-sent frame are closed after this long;
    /// `nil` keeps them. Default 5 minutes.
    public var idleTimeout: Duration? = .seconds(300)
    /// Bytes of half-received frames and HTTP bodies all connections together may hold; a read that
    /// would pass it is refused (`RESOURCE_EXHAUSTED`, call id 0; HTTP 503) and its connection closed. Default 256 MiB
    /// (eight largest frames at once).
    public var maxBufferedBytes: Int = 256 << 20
    /// Responses queued for one connection beyond the socket (bytes: the high-water mark at which
    /// it counts as not reading; frames: a hard count). Default 1 MiB and 1024.
    public var maxQueuedBytes: Int = 1 << 20
    public var maxQueuedFrames: Int = 1024
    /// How long a connection may stay over its outgoing queue bound before it is closed and its
    /// calls cancelled. Other connections are never delayed by it. Default 10 s.
    public var sendGracePeriod: Duration = .seconds(10)
    /// A caption requested over HTTP stops with 504 after this long unless its request sets
    /// `X-Request-Timeout` (seconds); `nil` for no server deadline. Default 120 s.
    public var httpRequestTimeout: Duration? = .seconds(120)
    /// When set, every HTTP request but `/healthz` and `/readyz` must carry
    /// `Authorization: Bearer <token>` (401 otherwise).
    public var httpToken: String?
    /// Caption calls waiting or running at once; one more gets `RESOURCE_EXHAUSTED`. Default 16.
    public var queueDepth: Int = 16
    /// How long calls in flight may run after a shutdown request before they are answered
    /// `UNAVAILABLE`. Default 10 s.
    public var gracePeriod: Duration = .seconds(10)
    /// Exit after this long with no RPC connection, no HTTP request in progress and no work; `nil`
    /// never exits for idleness.
    public var idleExit: Duration?
    /// Peers whose uid is listed may call; `nil` (and `allowedGIDs` `nil`) lets everyone in.
    /// With both lists set, a peer matching either is allowed.
    public var allowedUIDs: Set<UInt32>?
    /// Peers whose gid is listed may call. See ``allowedUIDs``.
    public var allowedGIDs: Set<UInt32>?
    /// systemd's watchdog interval (`WATCHDOG_USEC`); the server pings at half of it while the
    /// engine makes progress (`CaptionService.isMakingProgress`). `nil` disables the pings.
    public var watchdogInterval: Duration?
    /// How often the housekeeping task (``Heartbeat``, on the event loop) runs: sends watchdog pings
    /// and status lines, checks idleness. Default 100 ms.
    public var tickInterval: Duration = .milliseconds(100)
    /// Minimum time between two `STATUS=` updates. Default 1 s.
    public var statusInterval: Duration = .seconds(1)
    /// Sends sd_notify state strings; default: systemd's `NOTIFY_SOCKET` (a no-op without it).
    public var notifier: SystemdNotifier = .systemd
    /// Receives one line per event (connections, calls, errors). Default: discarded. The
    /// library never prints; the executable points this at stderr.
    public var log: @Sendable (String) -> Void = { _ in }

    public init() {}
}
