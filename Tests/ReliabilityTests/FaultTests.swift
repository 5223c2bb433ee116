import BLIPProtocol
import BLIPTestSupport
import Foundation
import Glibc
import Testing

extension ReliabilitySuite {
    /// A slow caption on tiny-a: 8 beams, 60 tokens forced.
    static func slowCaption() throws -> CaptionRequest {
        CaptionRequest(image: .init(data: try Paths.image("rocket.png")),
                       options: DecodingOptions(numBeams: 8, maxNewTokens: 60, minNewTokens: 60))
    }

    /// A client that disconnects with calls queued and running: the daemon logs them cancelled,
    /// keeps serving, and its fds return to the baseline.
    @Test func clientDisconnectsMidCall() throws {
        let h = try Harness()
        do {
            let c = try h.connect()
            for id in 1...4 as ClosedRange<UInt64> {
                try c.send(.request(callID: id, method: .caption, message: try Self.slowCaption()))
            }
            usleep(50_000)
        }  // closed here, with calls in flight
        h.bystanderIsServed(after: "disconnect mid-call")
        let deadline = Date(timeIntervalSinceNow: 5)
        while !h.daemon.log.contains("cancelled"), Date() < deadline { usleep(50_000) }
        let line = h.daemon.log.split(separator: "\n").first { $0.contains("closed") && $0.contains("cancelled") }
        h.note("disconnect with 4 slow calls in flight", line.map(String.init) ?? "no log line")
        #expect(line != nil, "the daemon should log the dropped calls: \(h.daemon.log)")
        // The worker is free again: a fresh caption is answered promptly.
        let after = try h.connect().caption(CaptionRequest(image: .init(data: try Paths.image("pixel_1x1.png")), options: .init(numBeams: 1, maxNewTokens: 3)))
        h.check("caption after the disconnect", after, code: .ok)
        h.finish("disconnect mid-call")
    }

    /// A client that sends half a frame and stalls: others are unaffected, and the daemon closes
    /// the stalled connection after --partial-frame-timeout (1 s here).
    @Test func halfFrameThenStall() throws {
        let h = try Harness(arguments: ["--partial-frame-timeout", "1"])
        do {
        let stalled = try h.connect()
        try stalled.sendRaw(RawClient.prefix(1000) + [0x08, 0x01])
        let stalledPrefix = try h.connect()
        try stalledPrefix.sendRaw([0x00, 0x00])
        for i in 0..<3 {
            let response = try h.connect().caption(CaptionRequest(image: .init(data: try Paths.image("pixel_1x1.png")), options: .init(numBeams: 1, maxNewTokens: 3)))
            h.check("caption \(i) while two clients stall mid-frame", response, code: .ok)
        }
        let closed = stalled.closedByPeer(within: 3)
        h.note("stalled half frame after 3 s", closed ? "closed by the daemon" : "still open (no read timeout)")
        #expect(closed, "a half-sent frame must not hold its connection for ever")
        }  // the stalled clients close here; their fds must be released
        h.finish("half frame and stall", rssBoundKiB: 8 << 10)
    }

    /// Many idle connections: each costs the daemon one fd and one thread, so they are limited
    /// (--max-connections 150 here; the bystander and the fresh client need two of them).
    @Test func manyIdleConnections() throws {
        let h = try Harness(arguments: ["--max-connections", "150"])
        let threadsBefore = h.daemon.threadCount
        var idle: [RawClient] = []
        for _ in 0..<200 { idle.append(try h.connect()) }
        h.bystanderIsServed(after: "200 idle connections")
        // The accept loop may lag behind the connects: wait until it has answered them all.
        let deadline = Date(timeIntervalSinceNow: 5)
        while h.daemon.fdCount < h.fdsBefore + 149, Date() < deadline { usleep(20_000) }
        usleep(200_000)
        let fds = h.daemon.fdCount
        let threads = h.daemon.threadCount
        let refused = idle.filter { $0.closedByPeer(within: 0.05) }.count
        h.note("200 idle connections, --max-connections 150", "\(200 - refused) kept open, \(refused) refused; daemon fds \(h.fdsBefore) -> \(fds), threads \(threadsBefore) -> \(threads)")
        #expect(refused >= 50, "connections beyond --max-connections must be refused (\(refused) were)")
        #expect(fds <= h.fdsBefore + 150, "daemon holds \(fds - h.fdsBefore) extra fds")
        // Once idle clients leave, new ones are served again.
        idle.removeAll()
        usleep(300_000)
        let fresh = try h.connect().caption(CaptionRequest(image: .init(data: try Paths.image("pixel_1x1.png")), options: .init(numBeams: 1, maxNewTokens: 3)))
        h.check("caption after the idle connections closed", fresh, code: .ok)
        h.finish("many idle connections", rssBoundKiB: 16 << 10)
    }

    /// More connections than the daemon's fd limit (ulimit -n 64): accept fails with EMFILE. The
    /// daemon must stay responsive and serve again once connections close.
    @Test func fileDescriptorExhaustion() throws {
        let daemon = try DaemonProcess(shellPrefix: "ulimit -n 64")
        var idle: [RawClient] = []
        for _ in 0..<80 { if let c = try? RawClient(path: daemon.socketPath) { idle.append(c) } }
        usleep(500_000)
        let cpuBusy = Self.cpuSeconds(daemon.pid)
        usleep(1_000_000)
        let cpuPerSecond = Self.cpuSeconds(daemon.pid) - cpuBusy
        let logLines = daemon.log.split(separator: "\n")
        let acceptFailures = logLines.filter { $0.contains("accept") }.count
        print("== fd exhaustion: \(idle.count) connects succeeded (backlog), daemon fds \(daemon.fdCount), CPU \(cpuPerSecond) s/s while full, \(acceptFailures) accept log lines")
        if let sample = logLines.first(where: { $0.contains("accept") }) { print("   \(sample)") }
        #expect(cpuPerSecond < 0.5, "the accept loop spins while out of fds: \(cpuPerSecond) CPU s/s, \(acceptFailures) log lines")
        idle.removeAll()
        usleep(300_000)
        let client = try RawClient(path: daemon.socketPath)
        #expect(try client.health() == .serving)
    }

    static func cpuSeconds(_ pid: Int32) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // utime and stime are fields 14 and 15; after the ")" they are the 12th and 13th.
        let ticks = (Double(fields[11]) ?? 0) + (Double(fields[12]) ?? 0)
        return ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// SIGTERM while 8 clients have 6 captions each queued or running: every call is answered,
    /// OK or UNAVAILABLE; none is silently lost; the daemon exits 0.
    @Test func sigtermUnderLoad() throws {
        let daemon = try DaemonProcess(arguments: ["--grace-period", "1", "--queue-depth", "64"])
        let request = try Self.slowCaption()
        var clients: [RawClient] = []
        for _ in 0..<8 { clients.append(try RawClient(path: daemon.socketPath)) }
        for client in clients {
            var frames: [UInt8] = []
            for id in 1...6 as ClosedRange<UInt64> {
                frames += RawClient.frame(Envelope.request(callID: id, method: .caption, message: request).encoded())
            }
            try client.sendRaw(frames)
        }
        usleep(300_000)
        kill(daemon.pid, SIGTERM)
        var codes: [StatusCode: Int] = [:]
        var answered = 0
        for client in clients {
            var seen = Set<UInt64>()
            while let response = try client.receive(timeout: 15) {
                seen.insert(response.callID)
                codes[response.statusCode, default: 0] += 1
                answered += 1
            }
            #expect(seen == Set(1...6), "calls answered on one connection: \(seen.sorted())")
        }
        let status = try daemon.waitForExit(timeout: 15)
        print("== SIGTERM under load: 48 calls sent, \(answered) answered: \(codes.map { "\($0.key.name) \($0.value)" }.sorted()); exit \(status)")
        #expect(answered == 48)
        #expect(Set(codes.keys).isSubset(of: [.ok, .unavailable]))
        #expect(status == 0)
    }

    /// A model file that is truncated, or whose header is garbage: a non-zero exit and a log
    /// line saying what failed.
    @Test(arguments: ["truncated", "garbage header", "missing"])
    func corruptModelAtStart(_ damage: String) throws {
        let folder = TemporaryDirectory()
        let model = URL(fileURLWithPath: folder.path)
        for name in try FileManager.default.contentsOfDirectory(atPath: Paths.tinyA.path) {
            try FileManager.default.copyItem(at: Paths.tinyA.appendingPathComponent(name), to: model.appendingPathComponent(name))
        }
        let weights = model.appendingPathComponent("model.safetensors")
        let original = try Data(contentsOf: weights)
        switch damage {
        case "truncated": try original.prefix(original.count / 2).write(to: weights)
        case "garbage header": try (Data(repeating: 0xFF, count: 8) + original.dropFirst(8)).write(to: weights)
        default: try FileManager.default.removeItem(at: weights)
        }
        let daemon = try DaemonProcess(model: model, wait: .started)
        let status = try daemon.waitForExit(timeout: 20)
        let failure = daemon.log.split(separator: "\n").first { $0.contains("loading the model failed") }
        print("== model \(damage): exit \(status): \(failure ?? "")")
        #expect(status != 0)
        #expect(failure?.contains("model.safetensors") == true, "log: \(daemon.log)")
    }
}
