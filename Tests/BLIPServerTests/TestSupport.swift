import BLIPProtocol
import BLIPServer
import Foundation
import Glibc
import Synchronization

/// A temporary directory, removed when released.
final class TemporaryDirectory: Sendable {
    let path: String

    init() {
        var template = Array("/tmp/blip-server-test.XXXXXX".utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// Lines recorded from several threads.
final class Recorder: Sendable {
    private let lines = Mutex<[String]>([])
    func append(_ line: String) { lines.withLock { $0.append(line) } }
    var all: [String] { lines.withLock { $0 } }
}

final class ExitBox: Sendable {
    let value = Mutex<CaptionServer.ExitReason?>(nil)
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
}

/// A CaptionServer over a fake service on a socket in a temporary directory, run on its own
/// thread. Records the sd_notify strings it sends.
final class TestServer: Sendable {
    let directory = TemporaryDirectory()
    let path: String
    let service: FakeService
    let server: CaptionServer
    let notifications = Recorder()
    let logLines = Recorder()
    private let finished = DispatchSemaphore(value: 0)
    private let reason = ExitBox()

    init(service: FakeService = FakeService(), configure: (inout ServerConfiguration) -> Void = { _ in }) throws {
        self.service = service
        path = directory.path + "/run/blip.sock"
        let listener = try ListeningSocket.bind(path: path)
        var configuration = ServerConfiguration()
        configuration.tickInterval = .milliseconds(10)
        configure(&configuration)
        configuration.notifier = SystemdNotifier { [notifications] in notifications.append($0) }
        configuration.log = { [logLines] in logLines.append($0) }
        server = CaptionServer(service: service, listeners: [listener], configuration: configuration)
        let thread = Thread { [server, reason, finished] in
            let exit = server.run()
            reason.value.withLock { $0 = exit }
            finished.signal()
        }
        thread.start()
    }

    /// Waits up to `timeout` for run() to return by itself.
    func waitForExit(timeout: Double = 10) -> CaptionServer.ExitReason? {
        guard finished.wait(timeout: .now() + timeout) == .success else { return nil }
        finished.signal()  // let later waits (and deinit) pass
        return reason.value.withLock { $0 }
    }

    /// Shuts the server down and waits for run() to return.
    @discardableResult
    func stop(timeout: Double = 10) -> CaptionServer.ExitReason? {
        server.shutdown()
        return waitForExit(timeout: timeout)
    }

    func connect() throws -> TestClient { try TestClient(path: path) }

    deinit { server.shutdown(); _ = finished.wait(timeout: .now() + 10) }
}

/// A blocking client speaking frames and envelopes, for tests.
final class TestClient {
    let fd: Int32
    private var decoder = FrameDecoder(maxFrameBytes: 64 << 20)

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

    func sendRaw(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            guard written > 0 else { throw TestFailure(description: "send failed: errno \(errno)") }
            offset += written
        }
    }

    /// A caption request of `steps` fake decoding steps.
    func caption(_ id: UInt64, steps: UInt32 = 3, prompt: String? = nil, timeout: Duration? = nil) throws {
        let request = CaptionRequest(image: .init(data: [1, 2, 3, 4]), prompt: prompt,
                                     options: DecodingOptions(maxNewTokens: steps))
        try send(.request(callID: id, method: .caption, message: request, timeout: timeout))
    }

    /// The next envelope, `nil` at end of stream (or a reset after it); throws after `timeout`.
    func receive(timeout: Double = 5) throws -> Envelope? {
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

    /// The next `count` envelopes, keyed by call id.
    func receive(count: Int, timeout: Double = 5) throws -> [UInt64: Envelope] {
        var responses: [UInt64: Envelope] = [:]
        for _ in 0..<count {
            guard let envelope = try receive(timeout: timeout) else { throw TestFailure(description: "connection closed") }
            responses[envelope.callID] = envelope
        }
        return responses
    }
}

extension Envelope {
    var statusCode: StatusCode { responseStatus.code }

    func caption() throws -> CaptionResponse { try CaptionResponse(decoding: payload) }
}
