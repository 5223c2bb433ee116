import BLIPProtocol
import Foundation
import Glibc

/// Paths inside the package, found from this file's location (no SwiftPM resources).
enum Paths {
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    /// The daemon built next to the running test bundle (so `--scratch-path .build-asan` tests the
    /// sanitized daemon), else `.build/debug/blip-captiond`.
    static let daemon: String = {
        let sibling = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("blip-captiond").path
        if FileManager.default.isExecutableFile(atPath: sibling) { return sibling }
        return packageRoot.appendingPathComponent(".build/debug/blip-captiond").path
    }()
    static let tinyA = packageRoot.appendingPathComponent("Tests/Fixtures/models/tiny-a")
    static let images = packageRoot.appendingPathComponent("Tests/Fixtures/images")
    static let inputs = packageRoot.appendingPathComponent("Tests/ReliabilityTests/Inputs")

    static func image(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: images.appendingPathComponent(name)))
    }

    static func input(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: inputs.appendingPathComponent(name)))
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
}

/// A temporary directory, removed when released.
final class TemporaryDirectory: Sendable {
    let path: String

    init() {
        var template = Array("/tmp/blip-reliability.XXXXXX".utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// The real `blip-captiond` binary serving a model on a socket in a temporary directory, its
/// stderr captured to a file. Terminated (SIGTERM, then SIGKILL) when released.
final class DaemonProcess {
    let directory = TemporaryDirectory()
    let socketPath: String
    let logPath: String
    let process = Process()

    /// Starts the daemon and waits until a health check answers SERVING.
    /// - Parameters:
    ///   - model: The model folder.
    ///   - arguments: Extra daemon options.
    ///   - shellPrefix: Commands run before `exec` (e.g. `ulimit -n 64`).
    ///   - waitReady: `false` to return at once (for daemons expected to fail).
    init(model: URL = Paths.tinyA, arguments: [String] = [], shellPrefix: String? = nil, waitReady: Bool = true) throws {
        socketPath = directory.path + "/blip.sock"
        logPath = directory.path + "/daemon.log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        guard FileManager.default.isExecutableFile(atPath: Paths.daemon) else {
            throw TestFailure(description: "\(Paths.daemon) is missing: run `swift build --build-tests` first")
        }
        let daemonArguments = ["--model", model.path, "--socket", socketPath] + arguments
        if let shellPrefix {
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", "\(shellPrefix); exec \"$0\" \"$@\"", Paths.daemon] + daemonArguments
        } else {
            process.executableURL = URL(fileURLWithPath: Paths.daemon)
            process.arguments = daemonArguments
        }
        var environment = ProcessInfo.processInfo.environment
        environment["OPENBLAS_NUM_THREADS"] = "1"
        environment.removeValue(forKey: "NOTIFY_SOCKET")
        environment.removeValue(forKey: "LISTEN_FDS")
        process.environment = environment
        process.standardError = FileHandle(forWritingAtPath: logPath)
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        if waitReady { try waitUntilServing() }
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGTERM)
            let deadline = Date(timeIntervalSinceNow: 5)
            while process.isRunning, Date() < deadline { usleep(10_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
    }

    var pid: Int32 { process.processIdentifier }

    func waitUntilServing(timeout: Double = 30) throws {
        let deadline = Date(timeIntervalSinceNow: timeout)
        while Date() < deadline {
            guard process.isRunning else { throw TestFailure(description: "daemon exited: \(log)") }
            if let client = try? RawClient(path: socketPath), (try? client.health()) == .serving { return }
            usleep(50_000)
        }
        throw TestFailure(description: "daemon not serving within \(timeout) s: \(log)")
    }

    /// Everything the daemon wrote to stderr so far.
    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Open file descriptors (`/proc/PID/fd`).
    var fdCount: Int { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1 }

    /// Resident memory in KiB (`VmRSS` of `/proc/PID/status`).
    var rssKiB: Int { Self.statusField("VmRSS", pid: pid) }

    /// Threads (`Threads` of `/proc/PID/status`).
    var threadCount: Int { Self.statusField("Threads", pid: pid) }

    static func statusField(_ name: String, pid: Int32) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return -1 }
        for line in text.split(separator: "\n") where line.hasPrefix(name + ":") {
            return Int(line.dropFirst(name.count + 1).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "") ?? -1
        }
        return -1
    }

    /// Waits until the fd count is at most `bound` (connections close asynchronously).
    @discardableResult
    func waitForFDs(atMost bound: Int, timeout: Double = 3) -> Int {
        let deadline = Date(timeIntervalSinceNow: timeout)
        var count = fdCount
        while count > bound, Date() < deadline {
            usleep(20_000)
            count = fdCount
        }
        return count
    }

    /// Sends `signal` and waits for the exit status.
    func stop(signal: Int32 = SIGTERM, timeout: Double = 15) throws -> Int32 {
        kill(pid, signal)
        return try waitForExit(timeout: timeout)
    }

    func waitForExit(timeout: Double) throws -> Int32 {
        let deadline = Date(timeIntervalSinceNow: timeout)
        while process.isRunning, Date() < deadline { usleep(10_000) }
        guard !process.isRunning else { throw TestFailure(description: "daemon still running after \(timeout) s") }
        return process.terminationStatus
    }
}
