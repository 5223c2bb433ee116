import BLIPProtocol
import Foundation

/// What a finished child process left: its exit status and everything it wrote.
public struct ProcessOutput: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String

    /// Runs `executable` to its end and collects its output. Both pipes are read at once, so a
    /// child that fills one while the test reads the other never blocks.
    /// - Parameters:
    ///   - executable: The program's path.
    ///   - arguments: Its arguments.
    ///   - stdin: Bytes written to its standard input, which is then closed (`nil`: /dev/null).
    ///   - environment: Its whole environment; `nil` inherits the test's.
    ///   - directory: Its working directory; `nil` keeps the test's.
    /// - Throws: When the program cannot be started.
    public static func run(_ executable: String, _ arguments: [String], stdin: Data? = nil,
                           environment: [String: String]? = nil, directory: String? = nil) throws -> ProcessOutput {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let out = Pipe(), err = Pipe(), input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = stdin == nil ? FileHandle.nullDevice : input
        try process.run()
        // Standard error is read on a thread of its own, not Dispatch's global queue: the read lasts
        // as long as the child, and the global queue is as wide as the machine (2 threads here),
        // which the fake engine's timers and the server's off-loop work need.
        let errorData = LockedState(Data())
        let readingErrors = DispatchSemaphore(value: 0)
        let reader = Thread {
            let data = err.fileHandleForReading.readDataToEndOfFile()
            errorData.withLock { $0 = data }
            readingErrors.signal()
        }
        reader.start()
        if let stdin {
            input.fileHandleForWriting.write(stdin)
            try? input.fileHandleForWriting.close()
        }
        let output = out.fileHandleForReading.readDataToEndOfFile()
        readingErrors.wait()
        process.waitUntilExit()
        return ProcessOutput(status: process.terminationStatus, stdout: String(decoding: output, as: UTF8.self), stderr: String(decoding: errorData.withLock { $0 }, as: UTF8.self))
    }
}
