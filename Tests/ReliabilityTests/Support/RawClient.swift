import BLIPProtocol
import Foundation
import Glibc

/// A blocking client that writes whatever bytes a test wants and reads envelopes back.
final class RawClient {
    let fd: Int32
    private var decoder = FrameDecoder(maxFrameBytes: 64 << 20)
    private var nextID: UInt64 = 1000

    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(path.utf8)
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard result == 0 else {
            let code = errno
            Glibc.close(fd)
            throw TestFailure(description: "connect \(path): errno \(code)")
        }
    }

    deinit { Glibc.close(fd) }

    func send(_ envelope: Envelope) throws {
        try sendRaw(FrameEncoder().encode(envelope.encoded()))
    }

    /// Writes `bytes` whole; throws when the peer has gone.
    func sendRaw(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            guard written > 0 else { throw TestFailure(description: "send failed: errno \(errno)") }
            offset += written
        }
    }

    /// A frame whose payload is `payload`, prefixed by its length.
    static func frame(_ payload: [UInt8]) -> [UInt8] {
        (try? FrameEncoder().encode(payload)) ?? []
    }

    /// A bare length prefix.
    static func prefix(_ length: UInt32) -> [UInt8] {
        [UInt8(length >> 24), UInt8(truncatingIfNeeded: length >> 16), UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length)]
    }

    /// The next envelope; `nil` at end of stream; throws after `timeout`.
    func receive(timeout: Double = 10) throws -> Envelope? {
        let deadline = Date(timeIntervalSinceNow: timeout)
        while true {
            if let frame = try decoder.nextFrame() { return try Envelope(decoding: frame) }
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { throw TestFailure(description: "no response within \(timeout) s") }
            var polled = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&polled, 1, Int32(left * 1000) + 1) > 0 else { continue }
            var buffer = [UInt8](repeating: 0, count: 65536)
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count <= 0 { return nil }
            decoder.append(Array(buffer[0..<count]))
        }
    }

    /// Whether the peer closes the connection within `timeout` (reads and discards anything first).
    func closedByPeer(within timeout: Double) -> Bool {
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

    /// Sends a request for `method` with `payload` and returns the response with its call id.
    func call(_ method: String, payload: [UInt8], callID: UInt64? = nil, timeout: Double = 20) throws -> Envelope {
        let id = callID ?? { nextID += 1; return nextID }()
        try send(Envelope(callID: id, kind: .request, method: method, payload: payload))
        guard let response = try receive(timeout: timeout) else { throw TestFailure(description: "connection closed") }
        return response
    }

    func caption(_ request: CaptionRequest, timeout: Double = 20) throws -> Envelope {
        try call(RPCMethod.caption.rawValue, payload: request.encoded(), timeout: timeout)
    }

    func health() throws -> HealthCheckResponse.ServingStatus {
        let response = try call(RPCMethod.healthCheck.rawValue, payload: HealthCheckRequest().encoded(), timeout: 5)
        guard response.responseStatus.code == .ok else { throw TestFailure(description: "health: \(response.responseStatus)") }
        return try HealthCheckResponse(decoding: response.payload).status
    }
}

extension Envelope {
    var statusCode: StatusCode { responseStatus.code }
    var statusMessage: String { responseStatus.message }
}
