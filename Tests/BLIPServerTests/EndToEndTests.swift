import BLIPProtocol
import BLIPTestSupport
import Foundation
import BLIPServer
import Glibc
import Testing

/// The daemon's start-up as built — `blip-captiond-fake`, the same start-up over the fake engine (no
/// model), and `blip-captiond` where a model matters — socket-activated by `systemd-socket-activate`,
/// with the test owning the sd_notify datagram socket.
@Suite struct EndToEndTests {
    /// The fake-engine daemon SwiftPM built next to this test bundle (or in .build/debug).
    static let binary = PackagePaths.fakeDaemon
    static let activate = DaemonProcess.socketActivate
    /// Without systemd-socket-activate skipped, except under scripts/test.sh (``RequiredTool``).
    static let available = FileManager.default.isExecutableFile(atPath: binary)
        && RequiredTool.systemdSocketActivate.runs

    /// Starts `systemd-socket-activate -l socket --fdname=blip-captiond` around the daemon's
    /// `blip-captiond-fake`, or with `sockets`: one `-l directory/file` each, their names passed
    /// as `--fdname=a:b` (the descriptors are 3, 4, … in that order). The daemon's stderr is in
    /// the returned process's `log`.
    static func activated(_ directory: TemporaryDirectory, arguments: [String], watchdogUsec: Int = 400_000,
                          sockets: [(file: String, fdname: String)] = [("blip.sock", "blip-captiond")]) throws -> DaemonProcess {
        try DaemonProcess.socketActivated(
            in: directory, sockets: sockets,
            variables: [("NOTIFY_SOCKET", directory.path + "/notify.sock"), ("WATCHDOG_USEC", "\(watchdogUsec)")],
            executable: binary, arguments: arguments)
    }

    @Test(.enabled(if: available, "needs the built blip-captiond (swift build) and systemd-socket-activate"))
    func socketActivationNotifyAndIdleExit() throws {
        let directory = TemporaryDirectory()
        let notify = try NotifySocket(path: directory.path + "/notify.sock")
        let daemon = try Self.activated(directory, arguments: ["--idle-exit", "0.5"])

        // Nothing runs until the first connection.
        #expect(try notify.receive(timeout: 0.3) == nil)

        do {
            let client = try RawClient(path: directory.path + "/blip.sock")
            try client.send(.request(callID: 1, method: .healthCheck, message: HealthCheckRequest()))
            let health = try #require(try client.receive(timeout: 10))
            #expect(try HealthCheckResponse(decoding: health.payload).status == .serving)
            try client.caption(2, prompt: "end to end")
            let caption = try #require(try client.receive(timeout: 10))
            #expect(try caption.caption().candidates.first?.text == "end to end of 4 bytes")
            Thread.sleep(forTimeInterval: 0.3)  // watchdog pings at 200 ms
        }

        // After the connection closes, --idle-exit 0.5 ends the daemon cleanly.
        var messages: [String] = []
        while let message = try notify.receive(timeout: 5) {
            messages.append(message)
            if message.hasPrefix("STOPPING=1") { break }
        }
        daemon.process.waitUntilExit()
        #expect(daemon.process.terminationStatus == 0)

        let kinds = messages.map { $0.split(separator: "\n").first.map(String.init) ?? "" }
        #expect(kinds.first?.hasPrefix("STATUS=loading model") == true, "\(messages)")
        let ready = try #require(kinds.firstIndex(of: "READY=1"), "\(messages)")
        let warming = try #require(kinds.firstIndex { $0.hasPrefix("STATUS=warming up") })
        #expect(warming < ready)
        #expect(messages[ready].contains("STATUS=serving"))
        let firstPing = try #require(kinds.firstIndex(of: "WATCHDOG=1"), "\(messages)")
        #expect(firstPing > ready)
        #expect(kinds.last == "STOPPING=1")
    }

    @Test(.enabled(if: available, "needs the built blip-captiond (swift build) and systemd-socket-activate"))
    func sigtermDrainsCallsInFlight() throws {
        let directory = TemporaryDirectory()
        let notify = try NotifySocket(path: directory.path + "/notify.sock")
        let daemon = try Self.activated(directory, arguments: ["--grace-period", "5"])

        let client = try RawClient(path: directory.path + "/blip.sock")
        try client.send(.request(callID: 1, method: .healthCheck, message: HealthCheckRequest()))
        #expect(try client.receive(timeout: 10)?.statusCode == .ok)
        try client.caption(2, steps: 60)  // ~300 ms
        Thread.sleep(forTimeInterval: 0.05)
        kill(daemon.pid, SIGTERM)
        let response = try #require(try client.receive(timeout: 5))
        #expect(response.callID == 2 && response.statusCode == .ok)
        daemon.process.waitUntilExit()
        #expect(daemon.process.terminationStatus == 0)
        var sawStopping = false
        while let message = try notify.receive(timeout: 0.5) {
            if message.hasPrefix("STOPPING=1") { sawStopping = true }
        }
        #expect(sawStopping)
    }

    @Test(.enabled(if: available, "needs the built blip-captiond (swift build) and systemd-socket-activate"))
    func sighupReloadsWithoutDroppingTheSocket() throws {
        let directory = TemporaryDirectory()
        let notify = try NotifySocket(path: directory.path + "/notify.sock")
        let daemon = try Self.activated(directory, arguments: [], watchdogUsec: 0)

        let client = try RawClient(path: directory.path + "/blip.sock")
        try client.send(.request(callID: 1, method: .healthCheck, message: HealthCheckRequest()))
        #expect(try client.receive(timeout: 10)?.statusCode == .ok)
        kill(daemon.pid, SIGHUP)
        var messages: [String] = []
        while let message = try notify.receive(timeout: 5) {
            messages.append(message)
            if message.hasPrefix("READY=1"), messages.contains(where: { $0.hasPrefix("RELOADING=1") }) { break }
        }
        let reloading = try #require(messages.firstIndex { $0.hasPrefix("RELOADING=1\nMONOTONIC_USEC=") }, "\(messages)")
        let ready = try #require(messages.lastIndex { $0.hasPrefix("READY=1") })
        #expect(reloading < ready)
        // Same connection, same process: still serving.
        try client.caption(2)
        #expect(try client.receive(timeout: 5)?.statusCode == .ok)
        #expect(daemon.process.isRunning)
        kill(daemon.pid, SIGTERM)
        daemon.process.waitUntilExit()
        #expect(daemon.process.terminationStatus == 0)
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: binary), "needs the built blip-captiond"))
    func modelThatDoesNotLoadFailsWithStatusAndStopping() throws {
        let directory = TemporaryDirectory()
        let notify = try NotifySocket(path: directory.path + "/notify.sock")
        let daemon = try DaemonProcess(model: URL(fileURLWithPath: directory.path + "/no-such-model"), in: directory,
                                       environment: ["NOTIFY_SOCKET": directory.path + "/notify.sock"], wait: .started)
        #expect(try daemon.waitForExit(timeout: 30) == 1)
        let log = daemon.log
        #expect(log.contains("loading the model failed"), "\(log)")
        var messages: [String] = []
        while let message = try notify.receive(timeout: 0.5) { messages.append(message) }
        #expect(messages.first?.hasPrefix("STATUS=loading model") == true, "\(messages)")
        #expect(messages.last?.hasPrefix("STOPPING=1\nSTATUS=loading the model failed") == true, "\(messages)")
        #expect(!messages.contains("READY=1"))
        #expect(!FileManager.default.fileExists(atPath: directory.path + "/blip.sock"))
    }

    /// Issue 20: before, `--http-listen` on a port in use sent READY=1 and exited 0, so
    /// `Restart=on-failure` never restarted it.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: binary), "needs the built blip-captiond"))
    func anHTTPPortInUseFailsWithoutReady() throws {
        let taken = try ListeningSocket.bind(host: "127.0.0.1", port: 0)
        defer { taken.close() }
        var address = sockaddr_in(), length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(taken.fileDescriptor, $0, &length) } }
        let port = Int(UInt16(bigEndian: address.sin_port))
        let directory = TemporaryDirectory()
        let notify = try NotifySocket(path: directory.path + "/notify.sock")
        var environment = DaemonProcess.isolatedEnvironment
        environment["NOTIFY_SOCKET"] = directory.path + "/notify.sock"
        let daemon = try DaemonProcess(executable: PackagePaths.fakeDaemon, rawArguments: ["--socket", directory.path + "/blip.sock",
                                                      "--http-listen", "127.0.0.1:\(port)"],
                                       in: directory, environment: environment, wait: .started)
        #expect(try daemon.waitForExit(timeout: 30) == 1)
        var messages: [String] = []
        while let message = try notify.receive(timeout: 0.5) { messages.append(message) }
        #expect(!messages.contains { $0.hasPrefix("READY=1") }, "\(messages)")
        #expect(messages.last?.hasPrefix("STOPPING=1\nSTATUS=cannot listen for HTTP on 127.0.0.1:\(port)") == true, "\(messages)")
        #expect(daemon.log.contains("Address already in use") || daemon.log.contains("EADDRINUSE"), "\(daemon.log)")
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: binary), "needs the built blip-captiond"))
    func listenFDsWithoutASocketIsAClearError() throws {
        let directory = TemporaryDirectory()
        let notify = try NotifySocket(path: directory.path + "/notify.sock")
        // fd 3 is a regular file, not a listening socket.
        let daemon = try DaemonProcess(
            executable: Self.binary, rawArguments: [], in: directory,
            shellPrefix: "export LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=blip-captiond NOTIFY_SOCKET=\(directory.path)/notify.sock; exec 3</dev/null")
        #expect(try daemon.waitForExit(timeout: 30) != 0)
        let log = daemon.log
        #expect(log.contains("LISTEN_FDS is set but systemd passed no usable listening Unix stream socket"), "\(log)")
        var stopping: String?
        while stopping == nil, let message = try notify.receive(timeout: 0.5) {
            if message.hasPrefix("STOPPING=1") { stopping = message }
        }
        #expect(stopping?.contains("STATUS=cannot listen") == true)
    }
}

extension EndToEndTests {
    /// systemd names a socket after its unit unless `FileDescriptorName=` says otherwise: a user's
    /// own `captions.socket` and template instances are caption-API sockets like `blip-captiond`.
    @Test(.enabled(if: available, "needs the built blip-captiond (swift build) and systemd-socket-activate"),
          arguments: ["captions.socket", "blip-captiond@large.socket", "unknown"])
    func adoptsAnUnreservedName(fdname: String) throws {
        let directory = TemporaryDirectory()
        let daemon = try Self.activated(directory, arguments: [], watchdogUsec: 0,
                                         sockets: [("blip.sock", fdname)])

        let client = try RawClient(path: directory.path + "/blip.sock")
        try client.send(.request(callID: 1, method: .healthCheck, message: HealthCheckRequest()))
        let health = try #require(try client.receive(timeout: 10), "daemon log:\n\(daemon.log)")
        #expect(try HealthCheckResponse(decoding: health.payload).status == .serving)
        #expect(daemon.log.contains("adopted 1 socket(s) from systemd: \(fdname)"), "\(daemon.log)")
        kill(daemon.pid, SIGTERM)
        daemon.process.waitUntilExit()
        #expect(daemon.process.terminationStatus == 0)
    }

    /// A descriptor named `http` is reserved for the HTTP listener: this version neither serves
    /// it nor closes it (a connection to it waits in the backlog), and says so once.
    @Test(.enabled(if: available, "needs the built blip-captiond (swift build) and systemd-socket-activate"))
    func httpSocketServesTheHTTPFaceBesideTheAPISocket() throws {
        let directory = TemporaryDirectory()
        let daemon = try Self.activated(directory, arguments: [], watchdogUsec: 0,
                                         sockets: [("blip.sock", "captions.socket"), ("http.sock", "http")])

        let client = try RawClient(path: directory.path + "/blip.sock")
        try client.send(.request(callID: 1, method: .healthCheck, message: HealthCheckRequest()))
        let health = try #require(try client.receive(timeout: 10), "daemon log:\n\(daemon.log)")
        #expect(try HealthCheckResponse(decoding: health.payload).status == .serving)

        // The http descriptor speaks HTTP, not frames.
        let http = try RawClient(path: directory.path + "/http.sock")
        try http.sendRaw(Array("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
        let reply = String(decoding: try http.readAll(timeout: 5), as: UTF8.self)
        #expect(reply.hasPrefix("HTTP/1.1 200 OK"), "\(reply)")

        let text = daemon.log
        #expect(text.components(separatedBy: "fd 4 named http: the HTTP listener").count == 2, "\(text)")
        #expect(text.contains("adopted 1 socket(s) from systemd: captions.socket"), "\(text)")
        kill(daemon.pid, SIGTERM)
        daemon.process.waitUntilExit()
        #expect(daemon.process.terminationStatus == 0)
    }

    /// With only reserved descriptors there is nothing to serve: the daemon refuses to start
    /// and its message names what it accepts.
    @Test(.enabled(if: available, "needs the built blip-captiond (swift build) and systemd-socket-activate"))
    func onlyAnHTTPSocketIsRefusedWithTheAcceptedNames() throws {
        let directory = TemporaryDirectory()
        let notify = try NotifySocket(path: directory.path + "/notify.sock")
        let daemon = try Self.activated(directory, arguments: [], watchdogUsec: 0,
                                         sockets: [("http.sock", "http")])

        _ = try RawClient(path: directory.path + "/http.sock")  // starts the daemon
        daemon.process.waitUntilExit()
        #expect(daemon.process.terminationStatus == 1)
        let text = daemon.log
        #expect(text.contains("fd 3 named http: the HTTP listener"), "\(text)")
        #expect(text.contains("LISTEN_FDS is set but systemd passed no usable listening Unix stream socket"), "\(text)")
        #expect(text.contains("any FileDescriptorName= except http"), "\(text)")
        var stopping: String?
        while stopping == nil, let message = try notify.receive(timeout: 0.5) {
            if message.hasPrefix("STOPPING=1") { stopping = message }
        }
        #expect(stopping?.contains("STATUS=cannot listen") == true)
    }
}

/// The sd_notify end a service manager owns: a datagram socket the daemon writes to.
final class NotifySocket {
    let fd: Int32
    let path: String

    init(path: String) throws {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        let bound = UnixSocketAddress.with(path) { bind(fd, $0, $1) }
        guard bound == 0 else { throw TestFailure(description: "bind \(path): errno \(errno)") }
    }

    deinit { close(fd); unlink(path) }

    /// The next datagram, or `nil` when none arrives within `timeout` seconds.
    func receive(timeout: Double) throws -> String? {
        var polled = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&polled, 1, Int32(timeout * 1000)) > 0 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard count >= 0 else { throw TestFailure(description: "recv: errno \(errno)") }
        return String(decoding: buffer[0..<count], as: UTF8.self)
    }
}
