import BLIPProtocol
import BLIPTestSupport
import Foundation
import Testing

/// examples/python/caption.py as users will copy it: every decoding option reaches the wire,
/// directories are walked, and a connection the daemon closes (with its call-id-0 reason) is
/// reported and reopened for the next image.
extension PythonExampleTests {
    /// A folder with two images (one behind a linked directory, which also loops back) and hidden
    /// files; every flag of DecodingOptions given once.
    @Test(.enabled(if: pythonReady, "needs python3 with protobuf and grpcio-tools (or protoc)"))
    func everyDecodingOptionAndDirectoriesReachTheDaemon() async throws {
        let server = try FakeServer { envelope, peer in
            peer.send(.response(to: envelope, message: CaptionResponse(candidates: [.init(text: "ok", tokenIDs: [30522, 102], score: -1)])))
        }
        defer { server.stop() }
        let directory = TemporaryDirectory()
        let fm = FileManager.default
        try fm.createDirectory(atPath: directory.path + "/photos/sub", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: directory.path + "/photos/.cache", withIntermediateDirectories: true)
        for path in ["photos/a.jpg", "photos/sub/b.PNG", "photos/.hidden.jpg", "photos/.cache/c.jpg", "photos/notes.txt"] {
            try Data([0xFF, 0xD8, 0xFF, 0xE0]).write(to: URL(fileURLWithPath: directory.path + "/" + path))
        }
        try fm.createSymbolicLink(atPath: directory.path + "/photos/sub/up", withDestinationPath: "..")

        let flags = ["--num-beams", "4", "--max-new-tokens", "11", "--min-new-tokens", "2", "--max-length", "30",
                     "--min-length", "3", "--length-penalty", "-0.5", "--repetition-penalty", "1.2",
                     "--no-repeat-ngram-size", "3", "--num-return-sequences", "2", "--early-stopping", "--do-sample",
                     "--temperature", "0.7", "--top-k", "20", "--top-p", "0.9", "--seed", "42",
                     "--bad-words", "arafed", "--bad-words", "a b", "--no-exif", "--prompt", "a picture of"]
        let result = try await Self.runOffPool(["python3", Self.script, "--socket", server.path] + flags + [directory.path + "/photos"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.stdout == "\(directory.path)/photos/a.jpg\t-1.0000\tok\n\(directory.path)/photos/sub/b.PNG\t-1.0000\tok\n", "\(result.stdout)")

        let requests = try server.received.map { try CaptionRequest(decoding: $0.payload) }
        try #require(requests.count == 2)
        let expected = DecodingOptions(numBeams: 4, maxNewTokens: 11, minNewTokens: 2, maxLength: 30, minLength: 3,
                                       lengthPenalty: -0.5, repetitionPenalty: 1.2, noRepeatNgramSize: 3,
                                       numReturnSequences: 2, earlyStopping: true, doSample: true, temperature: 0.7,
                                       topK: 20, topP: 0.9, seed: 42, badWords: ["arafed", "a b"])
        #expect(requests[0].options == expected, "\(requests[0].options)")
        #expect(requests[0].prompt == "a picture of")
        #expect(requests[0].image.applyEXIFOrientation == false)
    }

    /// The real daemon refuses a frame over --max-frame-bytes with a call-id-0 RESOURCE_EXHAUSTED
    /// and closes the connection. The example reports that reason (not "Broken pipe"), and the
    /// next image goes through a new connection.
    @Test(.enabled(if: pythonReady && FileManager.default.isExecutableFile(atPath: PackagePaths.daemon),
                   "needs python3 with protobuf and grpcio-tools (or protoc), and the built blip-captiond"))
    func anOversizedImageIsReportedAndTheNextOneReconnects() async throws {
        let directory = TemporaryDirectory()
        let daemon = try DaemonProcess(executable: PackagePaths.fakeDaemon, rawArguments: ["--socket", directory.path + "/blip.sock",
                                                      "--max-image-bytes", "4096", "--max-frame-bytes", "266240"], in: directory, wait: .serving)
        let big = directory.path + "/big.jpg", small = directory.path + "/small.jpg", after = directory.path + "/after.jpg"
        try Data([0xFF, 0xD8] + [UInt8](repeating: 0, count: 4 << 20)).write(to: URL(fileURLWithPath: big))
        try Data([0xFF, 0xD8, 0xFF, 0xE0]).write(to: URL(fileURLWithPath: small))
        try Data([0xFF, 0xD8, 0xFF, 0xE0]).write(to: URL(fileURLWithPath: after))

        let result = try await Self.runOffPool(["python3", Self.script, "--socket", daemon.socketPath, "--max-new-tokens", "1", small, big, after])
        #expect(result.status == 1, "one image failed: \(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 2 && lines[0].hasPrefix(small + "\t") && lines[1].hasPrefix(after + "\t"), "\(result.stdout)")
        #expect(result.stderr.contains("\(big): RESOURCE_EXHAUSTED:"), "\(result.stderr)")
        #expect(result.stderr.contains("(the daemon closed the connection)"), "\(result.stderr)")
        #expect(!result.stderr.contains("Broken pipe"), "\(result.stderr)")
    }
}
