import BLIPProtocol
import BLIPTestSupport
import Foundation
import Testing

/// examples/python/caption.py against the fake daemon: the schema in proto/ is enough for
/// another language to caption an image.
@Suite struct PythonExampleTests {
    static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let script = repository.appendingPathComponent("examples/python/caption.py").path

    /// Whether python3 has protobuf and a protoc (grpcio-tools, or protoc on PATH). Without them
    /// the tests are reported as skipped with the comment below (Swift Testing's `.enabled(if:)`),
    /// never as passed — and under scripts/test.sh, which installs them into its venv, they run
    /// and fail (``RequiredTool``).
    static let pythonReady = RequiredTool.pythonProtobuf.runs

    /// Runs the process on a Dispatch thread: blocking a cooperative thread for a second would
    /// starve the timing tests running in parallel (the machine has two cores).
    static func runOffPool(_ arguments: [String]) async throws -> (status: Int32, stdout: String, stderr: String) {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue(label: "python-example").async {
                continuation.resume(with: Result { try run(arguments) })
            }
        }
    }

    static func run(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let output = try ProcessOutput.run("/usr/bin/env", arguments)
        return (output.status, output.stdout, output.stderr)
    }

    @Test(.enabled(if: pythonReady, "needs python3 with protobuf and grpcio-tools (or protoc)"))
    func captionsAnImageThroughTheFakeDaemon() async throws {
        let server = try FakeServer { envelope, peer in
            let request = try! CaptionRequest(decoding: envelope.payload)
            let text = "\(request.prompt ?? "") \(request.image.data.count) bytes beams \(request.options.numBeams ?? 0)"
            peer.send(.response(to: envelope, message: CaptionResponse(candidates: [
                .init(text: text, tokenIDs: [30522, 102], score: -0.25),
                .init(text: "second", tokenIDs: [30522, 102], score: -1),
            ])))
        }
        defer { server.stop() }
        let image = FileManager.default.temporaryDirectory.appendingPathComponent("blip-py-\(getpid()).jpg")
        try Data([0xFF, 0xD8, 0xFF, 0xE0, 0, 1, 2]).write(to: image)
        defer { try? FileManager.default.removeItem(at: image) }

        let result = try await Self.runOffPool([
            "python3", Self.script, "--socket", server.path, "--prompt", "a picture of",
            "--num-beams", "2", "--num-return-sequences", "2", image.path,
        ])

        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.stdout == "\(image.path)\t-0.2500\ta picture of 7 bytes beams 2\n\(image.path)\t-1.0000\tsecond\n")
        let request = try #require(server.received.first)
        #expect(request.method == RPCMethod.caption.rawValue && request.timeoutMicroseconds == 60_000_000)
    }

    @Test(.enabled(if: pythonReady, "needs python3 with protobuf and grpcio-tools (or protoc)"))
    func reportsAMissingDaemon() async throws {
        let result = try await Self.runOffPool(["python3", Self.script, "--socket", "/nonexistent/blip.sock", "--health"])
        #expect(result.status == 1)
        // Not the units' socket: the hint does not name blip-captiond.socket.
        #expect(result.stderr.contains("no daemon at /nonexistent/blip.sock: nothing listens there"), "\(result.stderr)")
    }
}
