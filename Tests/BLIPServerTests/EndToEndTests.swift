import BLIPProtocol
import Foundation
import Glibc
import Testing

/// The built `blip-captiond` binary, socket-activated by `systemd-socket-activate`, with the test
/// owning the sd_notify datagram socket. Uses the binary's `--test-fake-service` hook (no model).
@Suite struct EndToEndTests {
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    /// The daemon SwiftPM built next to this test bundle (or in .build/debug).
    static let binary: String = {
        let besideTests = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("blip-captiond").path
        let candidates = [besideTests, packageRoot.appendingPathComponent(".build/debug/blip-captiond").path]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0]
    }()
    static let activate = "/usr/bin/systemd-socket-activate"
    static let available = FileManager.default.isExecutableFile(atPath: binary)
        && FileManager.default.isExecutableFile(atPath: activate)

    /// Starts `systemd-socket-activate -l socket --fdname=blip-captiond` around the daemon, or
    /// with `sockets`: one `-l directory/file` each, their names passed as `--fdname=a:b` (the
    /// descriptors are 3, 4, … in that order). The daemon's stderr goes to `log` when given.
    static func activated(_ directory: TemporaryDirectory, arguments: [String], watchdogUsec: Int = 400_000,
                          sockets: [(file: String, fdname: String)] = [("blip.sock", "blip-captiond")],
                          log: String? = nil) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: activate)
        process.arguments = sockets.flatMap { ["-l", directory.path + "/" + $0.file] }
            + ["--fdname=" + sockets.map(\.fdname).joined(separator: ":"),
               "-E", "NOTIFY_SOCKET=" + directory.path + "/notify.sock",
               "-E", "WATCHDOG_USEC=\(watchdogUsec)",
               binary, "--test-fake-service"] + arguments
        if let log { _ = FileManager.default.createFile(atPath: log, contents: nil) }
        process.standardError = FileHandle(forWritingAtPath: log ?? "/dev/null")
        try process.run()
        // systemd-socket-activate binds the sockets before it waits for the first connection.
        let deadline = Date(timeIntervalSinceNow: 5)
        while !sockets.allSatisfy({ FileManager.default.fileExists(atPath: directory.path + "/" + $0.file) }), Date() < deadline {
            Thread.sleep(forTimeInterval: 0.01)
        }
        return process
    }

    /// What the daemon wrote to `log` so far.
    static func contents(_ log: String) -> String {
        String(decoding: FileManager.default.contents(atPath: log) ?? Data(), as: UTF8.self)
    }

    @Test(.enabled(if: available, "needs the built blip-captiond (swift build) and systemd-socket-activate"))
    func socketActivationNotifyAndIdleExit() throws {
        let directory = TemporaryDirectory()
        let notify = try NotifySocket(path: directory.path + "/notify.sock")
        let process = try Self.activated(directory, arguments: ["--idle-exit", "0.5"])
        defer { if process.isRunning { process.terminate() } }

        // Nothing runs until the first connection.
        #expect(try notify.receive(timeout: 0.3) == nil)

        do {
            let client = try TestClient(path: directory.path + "/blip.sock")
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
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)

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
        let process = try Self.activated(directory, arguments: ["--grace-period", "5"])
        defer { if process.isRunning { process.terminate() } }

        let client = try TestClient(path: directory.path + "/blip.sock")
        try client.send(.request(callID: 1, method: .healthCheck, message: HealthCheckRequest()))
        #expect(try client.receive(timeout: 10)?.statusCode == .ok)
        try client.caption(2, steps: 60)  // ~300 ms
        Thread.sleep(forTimeInterval: 0.05)
        kill(process.processIdentifier, SIGTERM)
        let response = try #require(try client.receive(timeout: 5))
        #expect(response.callID == 2 && response.statusCode == .ok)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
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
        let process = try Self.activated(directory, arguments: [], watchdogUsec: 0)
        defer { if process.isRunning { process.terminate() } }

        let client = try TestClient(path: directory.path + "/blip.sock")
        try client.send(.request(callID: 1, method: .healthCheck, message: HealthCheckRequest()))
        #expect(try client.receive(timeout: 10)?.statusCode == .ok)
        kill(process.processIdentifier, SIGHUP)
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
        #expect(process.isRunning)
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: binary), "needs the built blip-captiond"))
    func modelThatDoesNotLoadFailsWithStatusAndStopping() throws {
        let directory = TemporaryDirectory()
        let notify = try NotifySocket(path: directory.path + "/notify.sock")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = ["--model", directory.path + "/no-such-model", "--socket", directory.path + "/blip.sock"]
        process.environment = ["NOTIFY_SOCKET": directory.path + "/notify.sock"]
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        let log = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 1)
        #expect(log.contains("loading the model failed"), "\(log)")
        var messages: [String] = []
        while let message = try notify.receive(timeout: 0.5) { messages.append(message) }
        #expect(messages.first?.hasPrefix("STATUS=loading model") == true, "\(messages)")
        #expect(messages.last?.hasPrefix("STOPPING=1\nSTATUS=loading the model failed") == true, "\(messages)")
        #expect(!messages.contains("READY=1"))
        #expect(!FileManager.default.fileExists(atPath: directory.path + "/blip.sock"))
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: binary), "needs the built blip-captiond"))
    func listenFDsWithoutASocketIsAClearError() throws {
        let directory = TemporaryDirectory()
        let notify = try NotifySocket(path: directory.path + "/notify.sock")
        // fd 3 is a regular file, not a listening socket.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=blip-captiond NOTIFY_SOCKET=\(directory.path)/notify.sock exec \"$0\" --test-fake-service 3</dev/null", Self.binary]
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        let log = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus != 0)
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
        let log = directory.path + "/daemon.log"
        let process = try Self.activated(directory, arguments: [], watchdogUsec: 0,
                                         sockets: [("blip.sock", fdname)], log: log)
        defer { if process.isRunning { process.terminate() } }

        let client = try TestClient(path: directory.path + "/blip.sock")
        try client.send(.request(callID: 1, method: .healthCheck, message: HealthCheckRequest()))
        let health = try #require(try client.receive(timeout: 10), "daemon log:\n\(Self.contents(log))")
        #expect(try HealthCheckResponse(decoding: health.payload).status == .serving)
        #expect(Self.contents(log).contains("adopted 1 socket(s) from systemd: \(fdname)"), "\(Self.contents(log))")
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }

    /// A descriptor named `http` is reserved for the HTTP listener: this version neither serves
    /// it nor closes it (a connection to it waits in the backlog), and says so once.
    @Test(.enabled(if: available, "needs the built blip-captiond (swift build) and systemd-socket-activate"))
    func httpSocketIsLeftAloneBesideTheAPISocket() throws {
        let directory = TemporaryDirectory()
        let log = directory.path + "/daemon.log"
        let process = try Self.activated(directory, arguments: [], watchdogUsec: 0,
                                         sockets: [("blip.sock", "captions.socket"), ("http.sock", "http")], log: log)
        defer { if process.isRunning { process.terminate() } }

        let client = try TestClient(path: directory.path + "/blip.sock")
        try client.send(.request(callID: 1, method: .healthCheck, message: HealthCheckRequest()))
        let health = try #require(try client.receive(timeout: 10), "daemon log:\n\(Self.contents(log))")
        #expect(try HealthCheckResponse(decoding: health.payload).status == .serving)

        // Still open (connect succeeds: the kernel queues it), never accepted or answered.
        let http = try TestClient(path: directory.path + "/http.sock")
        try http.send(.request(callID: 1, method: .healthCheck, message: HealthCheckRequest()))
        #expect(throws: TestFailure.self) { try http.receive(timeout: 0.3) }

        let text = Self.contents(log)
        #expect(text.components(separatedBy: "fd 4 named http: reserved for the HTTP listener, not served by this version").count == 2, "\(text)")
        #expect(text.contains("adopted 1 socket(s) from systemd: captions.socket"), "\(text)")
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }

    /// With only reserved descriptors there is nothing to serve: the daemon refuses to start
    /// and its message names what it accepts.
    @Test(.enabled(if: available, "needs the built blip-captiond (swift build) and systemd-socket-activate"))
    func onlyAnHTTPSocketIsRefusedWithTheAcceptedNames() throws {
        let directory = TemporaryDirectory()
        let log = directory.path + "/daemon.log"
        let notify = try NotifySocket(path: directory.path + "/notify.sock")
        let process = try Self.activated(directory, arguments: [], watchdogUsec: 0,
                                         sockets: [("http.sock", "http")], log: log)
        defer { if process.isRunning { process.terminate() } }

        _ = try TestClient(path: directory.path + "/http.sock")  // starts the daemon
        process.waitUntilExit()
        #expect(process.terminationStatus == 1)
        let text = Self.contents(log)
        #expect(text.contains("fd 3 named http: reserved for the HTTP listener, not served by this version"), "\(text)")
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
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(path.utf8)
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
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
