import BLIPEngine
import BLIPProtocol
import BLIPTestSupport
import Foundation
import Glibc
import Testing

/// `blip-caption info` and `health` against the built daemon (the tiny model, or `blip-captiond-fake`), and against sockets that never answer.
extension CLITests {
    static let daemonBuilt = FileManager.default.isExecutableFile(atPath: binary.path)
        && FileManager.default.isExecutableFile(atPath: PackagePaths.daemon)

    /// Every key of `InfoResponse`, by section, as the proto's descriptors name them (a field added
    /// to captioner.proto appears here, and must appear in `info --json`). `requests_by_status` is a
    /// list on the wire and an object keyed by status name in the JSON.
    static let infoKeys: [String: Set<String>] = ProtoJSON.infoResponseFields
        .filter { !$0.key.contains(".") }.mapValues(Set.init)

    /// The tiny model behind the real daemon: one JSON object with every field, and the values
    /// the daemon was started with and the text output shows.
    @Test(.enabled(if: daemonBuilt, "build blip-caption and blip-captiond first (swift build --build-tests)"))
    func infoJSONCarriesEveryField() throws {
        let daemon = try DaemonProcess(arguments: ["--max-batch", "3", "--feature-cache-mb", "16", "--queue-depth", "7"])
        let health = try run(["health", "--socket", daemon.socketPath])
        #expect(health.status == 0 && health.stdout == "SERVING\n", "\(health.stderr)")

        let r = try run(["info", "--json", "--socket", daemon.socketPath])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n")
        try #require(lines.count == 1, "one JSON object on one line: \(r.stdout)")
        let info = try #require(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        for (section, keys) in Self.infoKeys {
            let object = try #require(section.isEmpty ? info : info[section] as? [String: Any], "section \(section)")
            #expect(Set(object.keys) == keys, "\(section.isEmpty ? "top level" : section): \(object.keys.sorted())")
        }
        let model = try #require(info["model"] as? [String: Any]), limits = try #require(info["limits"] as? [String: Any])
        let defaults = try #require(info["defaults"] as? [String: Any]), counters = try #require(info["counters"] as? [String: Any])
        let cache = try #require(info["feature_cache"] as? [String: Any]), engine = try #require(info["engine"] as? [String: Any])
        #expect((info["model_id"] as? String)?.isEmpty == false)
        #expect((info["model_revision"] as? String)?.isEmpty == false, "\(info)")
        #expect(info["weights_precision"] as? String == "fp32", "\(info)")
        #expect(info["instruction_path"] as? String == PrecisionPlan.make(.float32).instructionPath, "\(info)")
        #expect(info["image_formats"] as? [String] == ["JPEG", "PNG", "WebP", "GIF", "BMP", "TIFF", "HEIC", "AVIF"], "\(info)")
        #expect((info["engine_version"] as? String)?.isEmpty == false)
        #expect((info["blas_core"] as? String)?.isEmpty == false)
        #expect((info["blas_threads"] as? Int ?? 0) >= 1)
        #expect((model["vocab_size"] as? Int ?? 0) > 0 && (model["image_size"] as? Int ?? 0) > 0, "\(model)")
        #expect(limits["max_prompts"] as? Int == 8)
        #expect(limits["max_jpeg_scans"] as? Int == 100 && limits["max_text_bytes"] as? Int == 512)
        #expect(limits["max_bad_words"] as? Int == 64 && limits["max_bad_word_tokens"] as? Int == 32)
        #expect(limits["max_queue_depth"] as? Int == 7)
        #expect(limits["max_beams"] as? Int == 8)
        #expect(defaults["num_beams"] as? Int == 3 && defaults["max_length"] as? Int == 20 && defaults["min_length"] as? Int == 5)
        #expect(defaults["max_new_tokens"] is NSNull && defaults["seed"] is NSNull, "unset defaults are null: \(defaults)")
        #expect(defaults["bad_words"] as? [String] == [])
        let byStatus = try #require(counters["requests_by_status"] as? [String: Any])
        #expect((byStatus["OK"] as? Int ?? 0) >= 2, "the readiness probe's and the CLI's health calls: \(byStatus)")
        #expect((counters["uptime_us"] as? Int ?? 0) > 0)
        #expect(cache["capacity_bytes"] as? Int == 16 << 20)
        #expect(engine["max_batch"] as? Int == 3)

        let text = try run(["info", "--socket", daemon.socketPath])
        #expect(text.stdout.hasPrefix("model:        \(info["model_id"] as? String ?? "?")\n"), "\(text.stdout)")
        #expect(text.stdout.contains("8 prompts, queue 7"), "\(text.stdout)")
        #expect(text.stdout.contains("precision:    fp32 on \(PrecisionPlan.make(.float32).instructionPath)\n"), "\(text.stdout)")
    }

    /// A daemon started with `--precision int8` says so in Info (the precision and the instructions
    /// it runs on here) and captions.
    @Test(.enabled(if: daemonBuilt, "build blip-caption and blip-captiond first (swift build --build-tests)"))
    func anInt8DaemonReportsItsPrecisionAndCaptions() throws {
        let daemon = try DaemonProcess(arguments: ["--precision", "int8"])
        let r = try run(["info", "--json", "--socket", daemon.socketPath])
        #expect(r.status == 0, "\(r.stderr)")
        let info = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(info["weights_precision"] as? String == "int8", "\(info)")
        #expect(info["instruction_path"] as? String == PrecisionPlan.make(.int8).instructionPath, "\(info)")
        let image = Fixtures.root.appendingPathComponent("images/rocket.png").path
        let caption = try run(["caption", "--socket", daemon.socketPath, "--max-new-tokens", "6", image])
        #expect(caption.status == 0 && !caption.stdout.isEmpty, "\(caption.stderr)")
    }

    /// A socket whose listener never accepts: the connect lands in the backlog, the call is sent
    /// and nothing answers. The CLI gives up after --timeout (plus the client's 250 ms grace) and
    /// says which flag moves the limit; exit status 2, as for no daemon.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: binary.path), "build blip-caption first (swift build)"),
          arguments: [["health"], ["info"], ["info", "--json"]])
    func silentSocketTimesOutNamingTheFlag(command: [String]) throws {
        let directory = TemporaryDirectory()
        let path = directory.path + "/silent.sock"
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        try #require(UnixSocketAddress.with(path) { bind(fd, $0, $1) } == 0 && listen(fd, 16) == 0)

        let start = ContinuousClock.now
        let r = try run(command + ["--timeout", "1", "--socket", path])
        let elapsed = ContinuousClock.now - start
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stdout.isEmpty)
        #expect(r.stderr == "blip-caption: no answer from blip-captiond at \(path) within 1 s; is the daemon busy or stopped? raise --timeout\n")
        #expect(elapsed >= .seconds(1) && elapsed < .seconds(2), "\(elapsed)")
    }

    /// A daemon stopped with SIGSTOP (as a debugger or a frozen cgroup leaves it) holds `health`
    /// only for --timeout.
    @Test(.enabled(if: daemonBuilt, "build blip-caption and blip-captiond first (swift build --build-tests)"))
    func stoppedDaemonTimesOut() throws {
        let directory = TemporaryDirectory()
        let daemon = try DaemonProcess(executable: PackagePaths.fakeDaemon, rawArguments: ["--socket", directory.path + "/blip.sock"], in: directory, wait: .serving)
        #expect(try run(["health", "--timeout", "1", "--socket", daemon.socketPath]).stdout == "SERVING\n")

        kill(daemon.pid, SIGSTOP)
        defer { kill(daemon.pid, SIGCONT) }
        let start = ContinuousClock.now
        let r = try run(["health", "--timeout", "0.5", "--socket", daemon.socketPath])
        let elapsed = ContinuousClock.now - start
        #expect(r.status == 2)
        #expect(r.stderr.contains("within 0.5 s; is the daemon busy or stopped? raise --timeout"), "\(r.stderr)")
        #expect(elapsed < .milliseconds(1500), "\(elapsed)")
    }

    /// The default is 5 s, and a timeout must be a positive number of seconds.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: binary.path), "build blip-caption first (swift build)"),
          arguments: ["health", "info"])
    func timeoutDefaultAndValidation(command: String) throws {
        let help = try run([command, "--help"]).stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(help.contains("--timeout <seconds> Seconds to wait for the daemon's answer. (default: 5.0)"), "\(help)")
        for bad in ["0", "-1", "nan", "1e9"] {
            let r = try run([command, "--timeout=\(bad)", "--socket", "/nonexistent.sock"])
            #expect(r.status == 64, "--timeout \(bad): \(r.stderr)")
            #expect(r.stderr.contains("--timeout must be a positive number of seconds"), "\(r.stderr)")
        }
    }
}

/// The CLI's checks against a daemon's limits, and global options on either side of the subcommand.
extension CLITests {
    /// `--num-beams 9` passes the table's own range but not the daemon's `--max-beams` (8): one
    /// message naming the flag and the daemon's bound, exit 64, and no caption call reaches the
    /// daemon (its counters show only the Info call).
    @Test(.enabled(if: daemonBuilt, "build blip-caption and blip-captiond first (swift build --build-tests)"))
    func optionsBeyondTheDaemonsLimitsAreRefusedOnceBeforeAnyImage() throws {
        let daemon = try DaemonProcess(arguments: [])
        let images = Fixtures.root.appendingPathComponent("images").path
        let r = try run(["caption", "--socket", daemon.socketPath, "--num-beams", "9", images])
        #expect(r.status == 64, "\(r.stderr)")
        #expect(r.stdout.isEmpty)
        #expect(r.stderr.components(separatedBy: "must be").count == 2, "one message: \(r.stderr)")
        #expect(r.stderr.contains("--num-beams must be in 1...8 on this daemon (its Info limits), got 9"), "\(r.stderr)")
        let info = try run(["info", "--json", "--socket", daemon.socketPath])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(info.stdout.utf8)) as? [String: Any])
        let byStatus = try #require((object["counters"] as? [String: Any])?["requests_by_status"] as? [String: Any])
        #expect(byStatus["INVALID_ARGUMENT"] == nil, "nothing was sent: \(byStatus)")
        let sent = byStatus.values.compactMap { $0 as? Int }.reduce(0, +)
        #expect(sent == 2, "the readiness probe's health call and the CLI's Info call only: \(byStatus)")
    }

    /// `--socket`, `--timeout` and `--json` before the subcommand, and a mistyped subcommand named as one.
    @Test(.enabled(if: daemonBuilt, "build blip-caption and blip-captiond first (swift build --build-tests)"))
    func globalOptionsComeBeforeOrAfterTheSubcommand() throws {
        let daemon = try DaemonProcess(arguments: [])
        let before = try run(["--socket", daemon.socketPath, "--timeout", "5", "health"])
        #expect(before.status == 0 && before.stdout == "SERVING\n", "\(before.stderr)")
        let json = try run(["--json", "--socket=\(daemon.socketPath)", "health"])
        #expect(json.status == 0 && json.stdout == "{\"status\":\"SERVING\"}\n", "\(json.stdout) \(json.stderr)")
        let info = try run(["--socket", daemon.socketPath, "--json", "info"])
        #expect(info.status == 0 && info.stdout.hasPrefix("{"), "\(info.stderr)")
        let typo = try run(["--socket", daemon.socketPath, "helth"])
        #expect(typo.status == 64, "\(typo.stderr)")
        #expect(typo.stderr.contains("unknown command 'helth'; did you mean 'health'?"), "\(typo.stderr)")
        let missing = try run(["nonexistent.jpg", "--socket", daemon.socketPath])
        #expect(missing.status != 64 && !missing.stderr.contains("unknown command"), "a path is an image: \(missing.stderr)")
    }
}
