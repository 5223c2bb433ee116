import BLIPProtocol
import Foundation
import Glibc

/// A blocking connection that writes whatever bytes a test wants and reads envelopes back: a
/// client of a daemon or an in-process server, or (with ``init(adopting:)``) a connection a
/// fake server accepted.
///
/// Not thread-safe for reading: receive on one thread. Sending only touches the descriptor.
public final class RawClient {
    /// The connected socket; closed when the client is released.
    public let fd: Int32
    private var decoder = FrameDecoder(maxFrameBytes: 64 << 20)
    private var nextID: UInt64 = 1000

    /// Connects to the Unix stream socket at `path`. A socket that is bound but not listening yet
    /// (`systemd-socket-activate` binds, then listens) refuses for a moment: that is retried for
    /// up to a second.
    /// - Throws: ``TestFailure`` with the errno when the connect fails.
    public init(path: String) throws {
        let deadline = Date(timeIntervalSinceNow: 1)
        while true {
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            let result = UnixSocketAddress.with(path) { Glibc.connect(fd, $0, $1) }
            if result == 0 {
                self.fd = fd
                return
            }
            let code = errno
            Glibc.close(fd)
            guard code == ECONNREFUSED, Date() < deadline else {
                throw TestFailure(description: "connect \(path): errno \(code)")
            }
            usleep(10_000)
        }
    }

    /// Takes over a connected stream socket (e.g. one a fake server accepted).
    /// - Parameter fd: The descriptor; the client closes it when released.
    public init(adopting fd: Int32) {
        self.fd = fd
    }

    deinit { Glibc.close(fd) }

    /// Sends `envelope` as one frame.
    /// - Throws: ``TestFailure`` when the peer has gone.
    public func send(_ envelope: Envelope) throws {
        try sendRaw(FrameEncoder().encode(envelope.encoded()))
    }

    /// Writes `bytes` whole.
    /// - Throws: ``TestFailure`` when the peer has gone.
    public func sendRaw(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            guard written > 0 else { throw TestFailure(description: "send failed: errno \(errno)") }
            offset += written
        }
    }

    /// A frame whose payload is `payload`, prefixed by its length.
    public static func frame(_ payload: [UInt8]) -> [UInt8] {
        (try? FrameEncoder().encode(payload)) ?? []
    }

    /// A bare 4-byte big-endian length prefix, for frames sent broken or in pieces.
    public static func prefix(_ length: UInt32) -> [UInt8] {
        [UInt8(length >> 24), UInt8(truncatingIfNeeded: length >> 16), UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length)]
    }

    /// The next frame's payload, undecoded.
    /// - Parameter timeout: Seconds to wait; `.infinity` waits for ever.
    /// - Returns: The payload, or `nil` at end of stream (or a reset after it).
    /// - Throws: ``TestFailure`` after `timeout`; the decoder's error for a bad frame.
    public func receiveFrame(timeout: Double = 10) throws -> [UInt8]? {
        let deadline = Date(timeIntervalSinceNow: timeout)
        while true {
            if let frame = try decoder.nextFrame() { return frame }
            let wait: Int32
            if timeout.isInfinite {
                wait = -1
            } else {
                let left = deadline.timeIntervalSinceNow
                guard left > 0 else { throw TestFailure(description: "no response within \(timeout) s") }
                wait = Int32(left * 1000) + 1
            }
            var polled = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&polled, 1, wait) > 0 else { continue }
            var buffer = [UInt8](repeating: 0, count: 65536)
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count <= 0 { return nil }
            decoder.append(Array(buffer[0..<count]))
        }
    }

    /// The next envelope.
    /// - Parameter timeout: Seconds to wait; `.infinity` waits for ever.
    /// - Returns: The envelope, or `nil` at end of stream (or a reset after it).
    /// - Throws: ``TestFailure`` after `timeout`; a decoding error for a bad frame or envelope.
    public func receive(timeout: Double = 10) throws -> Envelope? {
        guard let frame = try receiveFrame(timeout: timeout) else { return nil }
        return try Envelope(decoding: frame)
    }

    /// The next `count` envelopes, keyed by call id.
    /// - Parameter timeout: Seconds to wait for each.
    /// - Throws: ``TestFailure`` when the connection closes first or an envelope does not come.
    public func receive(count: Int, timeout: Double = 10) throws -> [UInt64: Envelope] {
        var responses: [UInt64: Envelope] = [:]
        for _ in 0..<count {
            guard let envelope = try receive(timeout: timeout) else { throw TestFailure(description: "connection closed") }
            responses[envelope.callID] = envelope
        }
        return responses
    }

    /// Every byte the peer sends until it closes the connection (for non-frame protocols such as
    /// HTTP with `Connection: close`).
    /// - Throws: ``TestFailure`` when it has not closed within `timeout` seconds.
    public func readAll(timeout: Double) throws -> [UInt8] {
        let deadline = Date(timeIntervalSinceNow: timeout)
        var bytes: [UInt8] = []
        while true {
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { throw TestFailure(description: "the peer did not close within \(timeout) s") }
            var polled = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&polled, 1, Int32(left * 1000) + 1) > 0 else { continue }
            var buffer = [UInt8](repeating: 0, count: 65536)
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count <= 0 { return bytes }
            bytes += buffer[0..<count]
        }
    }

    /// Whether the peer closes the connection within `timeout` seconds (reads and discards
    /// anything it sends first).
    public func closedByPeer(within timeout: Double) -> Bool {
        let deadline = Date(timeIntervalSinceNow: timeout)
        while true {
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { return false }
            var polled = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&polled, 1, Int32(left * 1000) + 1) > 0 else { continue }
            var buffer = [UInt8](repeating: 0, count: 65536)
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count <= 0 { return true }
        }
    }

    /// Sends a request for `method` and waits for the next envelope.
    /// - Parameters:
    ///   - method: The method name, sent as is (it need not be a known one).
    ///   - payload: The request message's bytes.
    ///   - callID: The call id; by default the next of this client's own (1001, 1002, …).
    ///   - timeout: Seconds to wait for the answer.
    /// - Throws: ``TestFailure`` when the connection closes or no answer comes in time.
    public func call(_ method: String, payload: [UInt8], callID: UInt64? = nil, timeout: Double = 20) throws -> Envelope {
        let id = callID ?? { nextID += 1; return nextID }()
        try send(Envelope(callID: id, kind: .request, method: method, payload: payload))
        guard let response = try receive(timeout: timeout) else { throw TestFailure(description: "connection closed") }
        return response
    }

    /// Sends a Caption call of `request` and waits for the answer (see ``call(_:payload:callID:timeout:)``).
    public func caption(_ request: CaptionRequest, timeout: Double = 20) throws -> Envelope {
        try call(RPCMethod.caption.rawValue, payload: request.encoded(), timeout: timeout)
    }

    /// Sends a Caption call for a fake service (``FakeService``, in process or in
    /// `blip-captiond-fake`), which takes a fake decoding step per new token; does not wait.
    /// - Parameters:
    ///   - id: The call id.
    ///   - steps: Fake decoding steps (`max_new_tokens`).
    ///   - prompt: The prompt, which the fake echoes into its caption.
    ///   - timeout: The call's deadline, sent in the envelope.
    public func caption(_ id: UInt64, steps: UInt32 = 3, prompt: String? = nil, timeout: Duration? = nil) throws {
        let request = CaptionRequest(image: .init(data: [1, 2, 3, 4]), prompt: prompt,
                                     options: DecodingOptions(maxNewTokens: steps))
        try send(.request(callID: id, method: .caption, message: request, timeout: timeout))
    }

    /// A HealthCheck call of the overall service.
    /// - Returns: The serving status.
    /// - Throws: ``TestFailure`` when the call fails or is not answered within 5 s.
    public func health() throws -> HealthCheckResponse.ServingStatus {
        let response = try call(RPCMethod.healthCheck.rawValue, payload: HealthCheckRequest().encoded(), timeout: 5)
        guard response.responseStatus.code == .ok else { throw TestFailure(description: "health: \(response.responseStatus)") }
        return try HealthCheckResponse(decoding: response.payload).status
    }
}
