import Foundation
import Glibc

/// The real `blip-captiond` binary (as built, see ``PackagePaths/daemon``) run from a test: directly
/// on a socket in a temporary directory, or under `systemd-socket-activate`. Its stderr is
/// captured to ``logPath``; its stdout goes nowhere (a daemon orphaned by a crashed test must
/// not hold the test runner's stdout open). Terminated when released: SIGTERM, then SIGKILL
/// after 5 s.
public final class DaemonProcess {
    /// How far ``init(executable:rawArguments:in:shellPrefix:environment:wait:)`` waits.
    public enum Readiness: Sendable {
        /// Return once the process runs (for daemons expected to fail, or socket activation).
        case started
        /// Until ``socketPath`` accepts connections (the daemon may still be warming up).
        case accepting
        /// Until a HealthCheck on ``socketPath`` answers SERVING.
        case serving
    }

    /// systemd's socket activator, which binds sockets and passes them on as `LISTEN_FDS`.
    public static let socketActivate = "/usr/bin/systemd-socket-activate"

    /// The test process's environment without a service manager's variables (`NOTIFY_SOCKET`,
    /// `LISTEN_FDS`) and with `OPENBLAS_NUM_THREADS=1`, so daemons started side by side by
    /// parallel tests do not each take every core.
    public static var isolatedEnvironment: [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["OPENBLAS_NUM_THREADS"] = "1"
        environment.removeValue(forKey: "NOTIFY_SOCKET")
        environment.removeValue(forKey: "LISTEN_FDS")
        return environment
    }

    /// The daemon's folder: its socket and log, and whatever the test puts there.
    public let directory: TemporaryDirectory
    /// `directory/blip.sock`: where ``init(model:arguments:in:shellPrefix:environment:wait:)``
    /// makes the daemon listen.
    public let socketPath: String
    /// `directory/daemon.log`: the daemon's stderr.
    public let logPath: String
    /// The process (after `exec`, the daemon's own).
    public let process = Process()

    /// Starts `executable` with exactly `rawArguments`.
    /// - Parameters:
    ///   - executable: The program; the built daemon by default.
    ///   - rawArguments: Its arguments, as they are.
    ///   - directory: The folder for the socket and the log; a new one by default. Pass another
    ///     daemon's to restart on the same socket path (both then keep the folder alive).
    ///   - shellPrefix: Commands `/bin/sh` runs before it `exec`s the program (e.g. `ulimit -n 64`).
    ///   - environment: The program's whole environment.
    ///   - readiness: How long to wait before returning.
    /// - Throws: ``TestFailure`` when the executable is missing, or the daemon exits or is not
    ///   ready within 30 s.
    public init(executable: String = PackagePaths.daemon, rawArguments: [String], in directory: TemporaryDirectory = TemporaryDirectory(),
                shellPrefix: String? = nil, environment: [String: String] = DaemonProcess.isolatedEnvironment,
                wait readiness: Readiness = .started) throws {
        self.directory = directory
        socketPath = directory.path + "/blip.sock"
        logPath = directory.path + "/daemon.log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw TestFailure(description: "\(executable) is missing: run `swift build --build-tests` first")
        }
        if let shellPrefix {
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", "\(shellPrefix); exec \"$0\" \"$@\"", executable] + rawArguments
        } else {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = rawArguments
        }
        process.environment = environment
        process.standardError = FileHandle(forWritingAtPath: logPath)
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        switch readiness {
        case .started: break
        case .accepting: try waitUntilAccepting()
        case .serving: try waitUntilServing()
        }
    }

    /// Starts the daemon serving `model` on ``socketPath``.
    /// - Parameters:
    ///   - model: The model folder; the tiny-a fixture by default.
    ///   - arguments: Daemon options after `--model … --socket …`.
    ///   - directory: See ``init(executable:rawArguments:in:shellPrefix:environment:wait:)``.
    ///   - shellPrefix: Commands run before `exec` (e.g. `ulimit -n 64`).
    ///   - environment: The daemon's whole environment.
    ///   - readiness: `.serving` by default; `.started` for daemons expected to fail.
    /// - Throws: ``TestFailure`` when the binary is missing, or the daemon exits or is not ready
    ///   within 30 s.
    public convenience init(model: URL = PackagePaths.fixtures.appendingPathComponent("models/tiny-a"), arguments: [String] = [],
                            in directory: TemporaryDirectory = TemporaryDirectory(), shellPrefix: String? = nil,
                            environment: [String: String] = DaemonProcess.isolatedEnvironment,
                            wait readiness: Readiness = .serving) throws {
        try self.init(rawArguments: ["--model", model.path, "--socket", directory.path + "/blip.sock"] + arguments,
                      in: directory, shellPrefix: shellPrefix, environment: environment, wait: readiness)
    }

    /// Starts `systemd-socket-activate` around the daemon: one `-l directory/file` per socket,
    /// their names passed as `--fdname=a:b` (the daemon gets descriptors 3, 4, … in that order),
    /// and `variables` as `-E NAME=value`. Returns once the sockets are bound (the activator
    /// binds them first, then waits for the first connection before it `exec`s the daemon, so
    /// ``pid`` becomes the daemon's).
    /// - Parameters:
    ///   - directory: The folder the socket files are made in.
    ///   - sockets: Files and their `FileDescriptorName=`s.
    ///   - variables: Environment variables the daemon gets, in order (e.g. `NOTIFY_SOCKET`).
    ///   - executable: The daemon: the built `blip-captiond` by default, or ``PackagePaths/fakeDaemon``.
    ///   - arguments: The daemon's arguments.
    /// - Throws: ``TestFailure`` when the daemon binary or the activator is missing.
    public static func socketActivated(in directory: TemporaryDirectory,
                                       sockets: [(file: String, fdname: String)] = [("blip.sock", "blip-captiond")],
                                       variables: [(name: String, value: String)] = [],
                                       executable: String = PackagePaths.daemon,
                                       arguments: [String]) throws -> DaemonProcess {
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw TestFailure(description: "\(executable) is missing: run `swift build --build-tests` first")
        }
        var activatorArguments: [String] = sockets.flatMap { ["-l", directory.path + "/" + $0.file] }
        activatorArguments.append("--fdname=" + sockets.map(\.fdname).joined(separator: ":"))
        for variable in variables { activatorArguments += ["-E", "\(variable.name)=\(variable.value)"] }
        activatorArguments.append(executable)
        let daemon = try DaemonProcess(executable: socketActivate, rawArguments: activatorArguments + arguments, in: directory)
        let deadline = Date(timeIntervalSinceNow: 5)
        while !sockets.allSatisfy({ FileManager.default.fileExists(atPath: directory.path + "/" + $0.file) }), Date() < deadline {
            Thread.sleep(forTimeInterval: 0.01)
        }
        return daemon
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

    /// The process id.
    public var pid: Int32 { process.processIdentifier }

    /// Waits until a HealthCheck on ``socketPath`` answers SERVING.
    /// - Throws: ``TestFailure`` when the daemon exits or does not serve within `timeout` seconds.
    public func waitUntilServing(timeout: Double = 30) throws {
        try waitUntil("serving", timeout: timeout) {
            guard let client = try? RawClient(path: socketPath) else { return false }
            return (try? client.health()) == .serving
        }
    }

    /// Waits until ``socketPath`` accepts a connection (a stale socket file refuses them).
    /// - Throws: ``TestFailure`` when the daemon exits or does not accept within `timeout` seconds.
    public func waitUntilAccepting(timeout: Double = 30) throws {
        try waitUntil("accepting connections", timeout: timeout) { (try? RawClient(path: socketPath)) != nil }
    }

    private func waitUntil(_ state: String, timeout: Double, _ ready: () -> Bool) throws {
        let deadline = Date(timeIntervalSinceNow: timeout)
        while Date() < deadline {
            guard process.isRunning else { throw TestFailure(description: "daemon exited: \(log)") }
            if ready() { return }
            usleep(50_000)
        }
        throw TestFailure(description: "daemon not \(state) within \(timeout) s: \(log)")
    }

    /// Everything the daemon wrote to stderr so far.
    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Open file descriptors (`/proc/PID/fd`); -1 once the process is gone.
    public var fdCount: Int { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1 }

    /// Resident memory in KiB (`VmRSS` of `/proc/PID/status`).
    public var rssKiB: Int { Self.statusField("VmRSS", pid: pid) }

    /// Threads (`Threads` of `/proc/PID/status`).
    public var threadCount: Int { Self.statusField("Threads", pid: pid) }

    /// The number at the start of field `name` of `/proc/PID/status`, or -1.
    public static func statusField(_ name: String, pid: Int32) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return -1 }
        for line in text.split(separator: "\n") where line.hasPrefix(name + ":") {
            return Int(line.dropFirst(name.count + 1).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "") ?? -1
        }
        return -1
    }

    /// Waits until the fd count is at most `bound` (connections close asynchronously).
    /// - Returns: The last count seen.
    @discardableResult
    public func waitForFDs(atMost bound: Int, timeout: Double = 3) -> Int {
        let deadline = Date(timeIntervalSinceNow: timeout)
        var count = fdCount
        while count > bound, Date() < deadline {
            usleep(20_000)
            count = fdCount
        }
        return count
    }

    /// Sends `signal` and waits for the exit status.
    /// - Throws: ``TestFailure`` when the daemon still runs after `timeout` seconds.
    public func stop(signal: Int32 = SIGTERM, timeout: Double = 15) throws -> Int32 {
        kill(pid, signal)
        return try waitForExit(timeout: timeout)
    }

    /// Whether the daemon is still running.
    public var isRunning: Bool { process.isRunning }

    /// After it exited: whether a signal ended it (SIGBUS, SIGSEGV, …) rather than `exit`.
    public var endedBySignal: Bool { !process.isRunning && process.terminationReason == .uncaughtSignal }

    /// The peak resident set size so far (`VmHWM`), in KiB.
    public var peakRSSKiB: Int { Self.statusField("VmHWM", pid: pid) }

    /// Resets the peak resident set size to the current one (`/proc/PID/clear_refs` ← 5), so
    /// ``peakRSSKiB`` then measures what follows.
    public func resetPeakRSS() {
        try? "5".write(toFile: "/proc/\(pid)/clear_refs", atomically: false, encoding: .utf8)
    }

    /// Waits for the daemon to exit by itself.
    /// - Returns: Its exit status (or the signal that ended it).
    /// - Throws: ``TestFailure`` when it still runs after `timeout` seconds.
    public func waitForExit(timeout: Double) throws -> Int32 {
        let deadline = Date(timeIntervalSinceNow: timeout)
        while process.isRunning, Date() < deadline { usleep(10_000) }
        guard !process.isRunning else { throw TestFailure(description: "daemon still running after \(timeout) s") }
        return process.terminationStatus
    }
}
