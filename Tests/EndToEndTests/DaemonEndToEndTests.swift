import BLIPClient
import BLIPTestSupport
import Foundation
import Glibc
import Testing

/// The real `blip-captiond` with a tiny fixture model, called through `BLIPClient`, the
/// `blip-caption` CLI and the Python example: captions must be exactly transformers'.
@Suite("Daemon end to end", .serialized)
struct DaemonEndToEndTests {
    static let packageRoot = PackagePaths.root
    static let fixtures = PackagePaths.fixtures
    static let cli = PackagePaths.builtProduct("blip-caption")
    static let built = FileManager.default.isExecutableFile(atPath: PackagePaths.daemon)

    /// transformers' output for the project's default parameters (beam 3, length 5…20) on tiny-a.
    struct Golden: Decodable, Sendable { var name: String; var image: String; var sequences: [[UInt32]]; var texts: [String] }
    static func goldens() throws -> [Golden] {
        try JSONDecoder().decode([Golden].self, from: Data(contentsOf: fixtures.appendingPathComponent("golden/tiny-a/generation.json")))
            .filter { $0.name == "project_default" }
    }

    /// The daemon as these tests run it: a fixture model on a socket in a temporary directory,
    /// with the test process's environment, ready once the socket accepts connections.
    /// - Parameters:
    ///   - model: The fixture model's folder name.
    ///   - directory: Another daemon's folder, to start on the same socket path.
    ///   - arguments: More daemon options.
    static func daemon(model: String = "tiny-a", in directory: TemporaryDirectory = TemporaryDirectory(),
                       arguments: [String] = []) throws -> DaemonProcess {
        // --idle-exit: a daemon orphaned by a crashed test exits by itself.
        try DaemonProcess(model: fixtures.appendingPathComponent("models/\(model)"),
                          arguments: ["--queue-depth", "64", "--idle-exit", "30"] + arguments, in: directory,
                          environment: ProcessInfo.processInfo.environment, wait: .accepting)
    }

    func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        if let environment { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    @Test(.enabled(if: built, "build the package first (swift build --build-tests)"))
    func clientCaptionsMatchTransformersConcurrently() async throws {
        let daemon = try Self.daemon()
        let goldens = try Self.goldens()
        try #require(goldens.count >= 3)
        let client = CaptionClient(socketPath: daemon.socketPath)
        let socket = daemon.socketPath
        #expect(try await client.health() == .serving)
        // All images at once on one connection, and again on one connection each (38 calls: the
        // daemon runs with --queue-depth 64).
        try await withThrowingTaskGroup(of: (Golden, CaptionResponse).self) { group in
            for golden in goldens {
                let bytes = [UInt8](try Data(contentsOf: Self.fixtures.appendingPathComponent("images/\(golden.image)")))
                group.addTask { (golden, try await client.caption(image: bytes, timeout: .seconds(60))) }
                group.addTask { (golden, try await CaptionClient(socketPath: socket).caption(image: bytes, timeout: .seconds(60))) }
            }
            for try await (golden, response) in group {
                #expect(response.candidates.map(\.tokenIDs) == golden.sequences, "\(golden.image)")
                #expect(response.candidates.map(\.text) == golden.texts, "\(golden.image)")
                #expect(response.modelID == "tiny-a")
            }
        }
        let info = try await client.info()
        #expect(info.counters.requestsByStatus[.ok, default: 0] >= UInt64(2 * goldens.count))
        #expect(info.model.visionHiddenSize == 48 && info.limits.maxBeams == 8)
        await client.close()
        #expect(try daemon.stop() == 0)
    }

    /// `--full-warm-up` (a complete caption before READY=1 instead of the quick warm-up) starts and
    /// serves the same captions.
    @Test(.enabled(if: built, "build the package first (swift build --build-tests)"))
    func fullWarmUpStartsAndServes() async throws {
        let daemon = try Self.daemon(arguments: ["--full-warm-up"])
        let golden = try #require(try Self.goldens().first)
        let bytes = [UInt8](try Data(contentsOf: Self.fixtures.appendingPathComponent("images/\(golden.image)")))
        let client = CaptionClient(socketPath: daemon.socketPath)
        let response = try await client.caption(image: bytes, timeout: .seconds(60))
        #expect(response.candidates.map(\.tokenIDs) == golden.sequences)
        await client.close()
        #expect(try daemon.stop() == 0)
    }

    @Test(.enabled(if: built, "build the package first (swift build --build-tests)"))
    func badRequestsGetPreciseCodesAndTheDaemonKeepsServing() async throws {
        let daemon = try Self.daemon()
        let client = CaptionClient(socketPath: daemon.socketPath)
        let jpeg = [UInt8](try Data(contentsOf: Self.fixtures.appendingPathComponent("images/astronaut_q90_420.jpg")))
        let cases: [(String, [UInt8], DecodingOptions, StatusCode, String)] = [
            ("no beams", jpeg, DecodingOptions(numBeams: 0), .invalidArgument, "num_beams"),
            ("top_p > 1", jpeg, DecodingOptions(doSample: true, topP: 1.5), .invalidArgument, "top_p"),
            ("NaN temperature", jpeg, DecodingOptions(doSample: true, temperature: .nan), .invalidArgument, "temperature"),
            ("too long", jpeg, DecodingOptions(maxNewTokens: 100_000), .invalidArgument, "max_new_tokens"),
            ("empty image", [], DecodingOptions(), .invalidArgument, "empty"),
            ("truncated JPEG", Array(jpeg.prefix(300)), DecodingOptions(), .invalidArgument, "JPEG"),
            ("garbage", Array(repeating: 0x42, count: 100), DecodingOptions(), .invalidArgument, "image format not recognised"),
        ]
        for (name, image, options, code, mention) in cases {
            do {
                _ = try await client.caption(image: image, options: options, timeout: .seconds(30))
                Issue.record("\(name): succeeded")
            } catch let CaptionClientError.rpc(error) {
                #expect(error.code == code, "\(name): \(error)")
                #expect(error.message.localizedCaseInsensitiveContains(mention), "\(name): \(error.message)")
            }
            #expect(try await client.health() == .serving, "after \(name)")
        }
        let ok = try await client.caption(image: jpeg, options: DecodingOptions(numBeams: 1, maxNewTokens: 5), timeout: .seconds(30))
        #expect(ok.candidates.count == 1)
        await client.close()
        #expect(try daemon.stop() == 0)
    }

    @Test(.enabled(if: built, "build the package first (swift build --build-tests)"))
    func cliThroughTheDaemonMatchesTransformers() throws {
        let daemon = try Self.daemon()
        let golden = try #require(try Self.goldens().first)
        let image = Self.fixtures.appendingPathComponent("images/\(golden.image)").path
        let r = try run(Self.cli, ["caption", "--socket", daemon.socketPath, "--json", image])
        #expect(r.status == 0, "\(r.stderr)")
        let line = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let candidates = try #require(line["candidates"] as? [[String: Any]])
        #expect((candidates.first?["token_ids"] as? [Int])?.map(UInt32.init) == golden.sequences[0])
        #expect(candidates.first?["text"] as? String == golden.texts[0])
        let health = try run(Self.cli, ["health", "--socket", daemon.socketPath])
        #expect(health.status == 0 && health.stdout == "SERVING\n")
        #expect(try daemon.stop() == 0)
    }

    /// The slowest request a tiny model allows: 8 beams forced to the 63 tokens its 64 positions hold.
    static let slow = DecodingOptions(numBeams: 8, maxNewTokens: 63, minNewTokens: 63)

    @Test(.enabled(if: built, "build the package first (swift build --build-tests)"))
    func deadlinesCancellationCrashAndRestart() async throws {
        var daemon = try Self.daemon(arguments: ["--max-batch", "1"])
        let socket = daemon.socketPath
        let client = CaptionClient(socketPath: socket)
        let jpeg = [UInt8](try Data(contentsOf: Self.fixtures.appendingPathComponent("images/astronaut_q90_420.jpg")))

        // Deadline: a short call queued behind slow ones expires (on the daemon or, at the latest, locally).
        // The daemon runs one caption at a time (--max-batch 1) and a blocker takes ~0.2 s here, so
        // ten of them hold it ~2 s. The short call is sent once the daemon holds a blocker: on a
        // loaded machine (the whole suite at once) the tasks of this test may start or resume late,
        // and a short call that arrives when the blockers are done runs at once and finishes in time.
        let blockers = (0..<10).map { _ in Task { try await client.caption(image: jpeg, options: Self.slow, timeout: .seconds(60)) } }
        let admitted = ContinuousClock.now + .seconds(10)
        while try await client.info().counters.queueDepth < 1, ContinuousClock.now < admitted {
            try await Task.sleep(for: .milliseconds(2))
        }
        do {
            _ = try await client.caption(image: jpeg, options: DecodingOptions(numBeams: 1), timeout: .milliseconds(20))
            Issue.record("a 20 ms call behind ten slow ones finished in time")
        } catch let error as CaptionClientError {
            #expect(error.code == .deadlineExceeded, "\(error)")
        }
        for b in blockers { _ = try await b.value }

        // Cancellation: cancelling the task ends the call at once; the daemon keeps serving.
        // The cancel comes from a Dispatch timer, for the reason given below for the kill.
        let cancelled = Task { try await client.caption(image: jpeg, options: Self.slow, timeout: .seconds(60)) }
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.02) { cancelled.cancel() }
        await #expect(throws: CancellationError.self) { try await cancelled.value }
        #expect(try await client.health() == .serving)

        // The daemon dies mid-call: the caller gets an error, not a hang.
        // The kill comes from a Dispatch timer: the client blocks a cooperative thread while it
        // waits, and with the 2 threads of this machine's pool busy a `Task.sleep` here could wake
        // only after the caption had been answered.
        let pid = daemon.process.processIdentifier
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.05) { kill(pid, SIGKILL) }
        let inFlight = Task { try await client.caption(image: jpeg, options: Self.slow, timeout: .seconds(60)) }
        daemon.process.waitUntilExit()
        do {
            _ = try await inFlight.value
            Issue.record("the call survived SIGKILL of the daemon")
        } catch let error as CaptionClientError {
            #expect([StatusCode.unavailable, .internal].contains(error.code) || error == .connectionLost(""), "\(error)")
            if case .connectionLost = error {} else if case .noDaemon = error {} else { Issue.record("unexpected \(error)") }
        }

        // A new daemon on the same path (the stale socket file is replaced); the same client reconnects.
        daemon = try Self.daemon(in: daemon.directory)
        let again = try await client.caption(image: jpeg, options: DecodingOptions(numBeams: 1, maxNewTokens: 4), timeout: .seconds(30))
        #expect(again.candidates.count == 1)
        await client.close()
        #expect(try daemon.stop() == 0)
    }

    @Test(.enabled(if: built, "build the package first (swift build --build-tests)"))
    func cliDirectoryStdinBadFileInfoHealthBench() throws {
        let daemon = try Self.daemon()
        let cli = Self.cli
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("blip-cli-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("sub"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for (name, to) in [("astronaut_q90_420.jpg", "a.jpg"), ("rocket.png", "sub/b.png")] {
            try FileManager.default.copyItem(at: Self.fixtures.appendingPathComponent("images/\(name)"), to: dir.appendingPathComponent(to))
        }
        try Data("not an image".utf8).write(to: dir.appendingPathComponent("bad.jpg"))

        let r = try run(cli, ["--socket", daemon.socketPath, "--json", dir.path])
        #expect(r.status == 1, "one bad file → exit 1: \(r.stderr)")
        let lines = try r.stdout.split(separator: "\n").map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        #expect(lines.map { ($0["image"] as? String)?.components(separatedBy: "/").suffix(2).joined(separator: "/") } == [
            dir.lastPathComponent + "/a.jpg", dir.lastPathComponent + "/bad.jpg", "sub/b.png"])
        #expect(lines[0]["candidates"] != nil && lines[2]["candidates"] != nil)
        #expect((lines[1]["error"] as? String)?.contains("INVALID_ARGUMENT") == true)
        #expect(r.stderr.contains("captioned 2, skipped 0 (already captioned), failed 1"), "\(r.stderr)")

        let info = try run(cli, ["info", "--socket", daemon.socketPath])
        #expect(info.status == 0 && info.stdout.contains("model:        tiny-a") && info.stdout.contains("OK 3"), "two captions and the CLI's Info call: \(info.stdout)")
        let bench = try run(cli, ["bench", "--socket", daemon.socketPath, "-n", "6", "-c", "2", "--num-beams", "1",
                                  dir.appendingPathComponent("a.jpg").path])
        #expect(bench.status == 0, "\(bench.stderr)")
        #expect(bench.stdout.contains("requests 6, concurrency 2, ok 6") && bench.stdout.contains("errors none"), "\(bench.stdout)")
        #expect(bench.stdout.contains("latency p50"))
        // A distinct copy per request (a.jpg itself is in the feature cache by now: the copies miss it).
        #expect(bench.stdout.contains("images: 6 distinct copies of") && bench.stdout.contains("feature cache hits 0 of 6\n"), "\(bench.stdout)")
        let same = try run(cli, ["bench", "--socket", daemon.socketPath, "-n", "3", "--same-image", "--num-beams", "1",
                                 dir.appendingPathComponent("sub/b.png").path])
        #expect(same.status == 0, "\(same.stderr)")
        // b.png was captioned above, so every repeat is answered from the cache, and the report says so.
        #expect(same.stdout.contains("the same bytes every time (--same-image)") && same.stdout.contains("feature cache hits 3 of 3 (those calls skipped"),
                "\(same.stdout)")
        let copies = try run(cli, ["bench", "--socket", daemon.socketPath, "-n", "3", "--num-beams", "1", dir.appendingPathComponent("sub/b.png").path])
        #expect(copies.status == 0 && copies.stdout.contains("images: 3 distinct copies of") && copies.stdout.contains("feature cache hits 0 of 3\n"),
                "a PNG's copies decode (same pixels) and miss the cache: \(copies.stdout) \(copies.stderr)")
        #expect(try daemon.stop() == 0)
        let gone = try run(cli, ["health", "--socket", daemon.socketPath])
        #expect(gone.status == 2 && gone.stderr.contains("no daemon at \(daemon.socketPath)"), "\(gone.stderr)")
    }

    static let canSwitchUser = getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv")

    /// Access control with a real second uid (nobody): the socket's file mode keeps out who lacks
    /// permission, and --allow-uid refuses a peer that can connect, without processing its request.
    @Test(.enabled(if: built && canSwitchUser, "needs root and setpriv to act as a second uid"))
    func secondUIDIsRefused() throws {
        let cli = Self.cli
        let image = Self.fixtures.appendingPathComponent("images/pixel_1x1.png").path
        let asNobody = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", cli]

        // Default socket mode 0660, owned by root: nobody cannot even connect.
        let closed = try Self.daemon()
        chmod(closed.directory.path, 0o755)
        let denied = try run(asNobody[0], Array(asNobody.dropFirst()) + ["health", "--socket", closed.socketPath])
        #expect(denied.status == 2 && denied.stderr.contains("permission denied on \(closed.socketPath)"), "\(denied.stderr)")
        #expect(try closed.stop() == 0)

        // A world-writable socket but --allow-uid 0: nobody connects and is refused per request.
        let open = try Self.daemon(arguments: ["--socket-mode", "0666", "--allow-uid", "0"])
        chmod(open.directory.path, 0o755)
        // nobody reads the image from beside the socket: the checkout may be where nobody cannot
        // look (a clone in /root, mode 0700).
        let readable = open.directory.path + "/pixel_1x1.png"
        try FileManager.default.copyItem(atPath: Self.fixtures.appendingPathComponent("images/pixel_1x1.png").path, toPath: readable)
        chmod(readable, 0o644)
        let refused = try run(asNobody[0], Array(asNobody.dropFirst()) + ["caption", "--socket", open.socketPath, "--json", readable])
        // The CLI's first call (Info, for its option checks) is refused: nothing can run, exit 2.
        #expect(refused.status == 2 && refused.stderr.contains("PERMISSION_DENIED"), "\(refused.stdout) \(refused.stderr)")
        let info = try run(cli, ["info", "--socket", open.socketPath])
        #expect(info.stdout.contains("PERMISSION_DENIED 1") && !info.stdout.contains("OK 1\n"), "the refused request was not processed: \(info.stdout)")
        let allowed = try run(cli, ["caption", "--socket", open.socketPath, "--num-beams", "1", image])
        #expect(allowed.status == 0, "\(allowed.stderr)")
        #expect(try open.stop() == 0)
    }

    /// Skipped without python3's protobuf and grpcio-tools, failed without them under scripts/test.sh.
    static let pythonReady = RequiredTool.pythonProtobuf.runs

    @Test(.enabled(if: built && pythonReady, "needs the built daemon and python3 with protobuf + grpcio-tools"))
    func pythonExampleCaptionsThroughTheDaemon() throws {
        let daemon = try Self.daemon()
        let golden = try #require(try Self.goldens().first)
        let image = Self.fixtures.appendingPathComponent("images/\(golden.image)").path
        let r = try run("/usr/bin/env", ["python3", Self.packageRoot.appendingPathComponent("examples/python/caption.py").path, "--socket", daemon.socketPath, image])
        #expect(r.status == 0, "\(r.stderr)")
        let fields = r.stdout.split(separator: "\n").first?.split(separator: "\t", omittingEmptySubsequences: false)
        #expect(fields?.count == 3 && fields?[0] == Substring(image), "\(r.stdout)")
        #expect(fields.map { String($0[2]) } == golden.texts[0], "\(r.stdout)")
        #expect(try daemon.stop() == 0)
    }
}
