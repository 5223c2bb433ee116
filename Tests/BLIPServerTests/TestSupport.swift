import BLIPProtocol
import BLIPServer
import BLIPTestSupport
import Foundation

/// Lines recorded from several threads.
final class Recorder: Sendable {
    private let lines = LockedState<[String]>([])
    func append(_ line: String) { lines.withLock { $0.append(line) } }
    var all: [String] { lines.withLock { $0 } }
}

final class ExitBox: Sendable {
    let value = LockedState<CaptionServer.ExitReason?>(nil)
}

/// A CaptionServer over a fake service on a socket in a temporary directory, run on its own
/// thread. Records the sd_notify strings it sends.
final class TestServer: Sendable {
    let directory = TemporaryDirectory()
    let path: String
    /// The HTTP face's Unix socket (served when `http` was passed).
    let httpPath: String
    let service: FakeService
    let server: CaptionServer
    let notifications = Recorder()
    let logLines = Recorder()
    private let finished = DispatchSemaphore(value: 0)
    private let reason = ExitBox()

    /// - Parameters:
    ///   - http: Serve the HTTP face on ``httpPath``.
    ///   - httpAddress: Serve the HTTP face on this `--http-listen` address instead.
    init(service: FakeService = FakeService(), http: Bool = false, httpAddress: String? = nil,
         configure: (inout ServerConfiguration) -> Void = { _ in }) throws {
        self.service = service
        path = directory.path + "/run/blip.sock"
        httpPath = directory.path + "/run/http.sock"
        let listener = try ListeningSocket.bind(path: path)
        var configuration = ServerConfiguration()
        configuration.tickInterval = .milliseconds(10)
        configure(&configuration)
        let httpListeners = try (httpAddress ?? (http ? httpPath : nil)).map { [try ListeningSocket.bind(httpAddress: $0)] } ?? []
        configuration.notifier = SystemdNotifier { [notifications] in notifications.append($0) }
        configuration.log = { [logLines] in logLines.append($0) }
        server = CaptionServer(service: service, listeners: [listener], configuration: configuration, httpListeners: httpListeners)
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

    func connect() throws -> RawClient { try RawClient(path: path) }

    deinit { server.shutdown(); _ = finished.wait(timeout: .now() + 10) }
}
