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

    /// Starts `systemd-socket-activate -l socket --fdname=blip-captiond` around the daemon.
    static func activated(_ directory: TemporaryDirectory, arguments: [String], watchdogUsec: Int = 400_000) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: activate)
        process.arguments = ["-l", directory.path + "/blip.sock", "--fdname=blip-captiond",
                             "-E", "NOTIFY_SOCKET=" + directory.path + "/notify.sock",
                             "-E", "WATCHDOG_USEC=\(watchdogUsec)",
                             binary, "--test-fake-service"] + arguments
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        // systemd-socket-activate binds the socket before it waits for the first connection.
        let deadline = Date(timeIntervalSinceNow: 5)
        while !FileManager.default.fileExists(atPath: directory.path + "/blip.sock"), Date() < deadline {
            Thread.sleep(forTimeInterval: 0.01)
        }
        return process
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
