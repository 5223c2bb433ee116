import BLIPProtocol
import BLIPTestSupport
import Foundation
import Glibc
import Testing

/// Health on another connection, asked every 10 ms from a thread of its own; the slowest answer
/// since the last ``slowest()``.
private final class HealthProbe: @unchecked Sendable {
    // @unchecked: `worst` and `stop` are guarded by `state`; the thread owns its client.
    private let state = LockedState((worst: 0.0, stop: false, failures: 0))
    private let thread: Thread

    init(socket: String) {
        let state = self.state
        thread = Thread {
            guard let client = try? RawClient(path: socket) else {
                state.withLock { $0.failures += 1 }
                return
            }
            while !state.withLock({ $0.stop }) {
                let asked = Date()
                let served = (try? client.health()) == .serving
                let took = Date().timeIntervalSince(asked)
                state.withLock { s in
                    s.worst = max(s.worst, took)
                    if !served { s.failures += 1 }
                }
                usleep(10_000)
            }
        }
        thread.start()
    }

    /// The slowest Health since the last call, in seconds, and how many failed.
    func slowest() -> (seconds: Double, failures: Int) {
        state.withLock { s in
            defer { (s.worst, s.failures) = (0, 0) }
            return (s.worst, s.failures)
        }
    }

    func stop() { state.withLock { $0.stop = true } }
}

extension ReliabilitySuite {
    /// Issue 20's "must hold": while any single request is received, decoded, hashed or refused, another
    /// connection's Health is answered within 250 ms, and the daemon's peak RSS grows by at most
    /// 4× that request's bytes + 32 MiB.
    @Test func oneExpensiveRequestStallsNoOneAndCostsASmallMultipleOfItsBytes() throws {
        let directory = TemporaryDirectory()
        let http = directory.path + "/http.sock"
        let daemon = try DaemonProcess(arguments: ["--http-listen", http, "--send-grace-period", "1"], in: directory)
        let probe = HealthProbe(socket: daemon.socketPath)
        defer { probe.stop() }
        Thread.sleep(forTimeInterval: 0.2)
        _ = probe.slowest()
        var rows: [String] = []

        func measure(_ name: String, bytes: Int, _ body: () throws -> String) rethrows {
            Thread.sleep(forTimeInterval: 0.3)  // the previous case's memory given back
            daemon.resetPeakRSS()
            let before = daemon.rssKiB
            _ = probe.slowest()
            let outcome = try body()
            Thread.sleep(forTimeInterval: 0.3)
            let (worst, failures) = probe.slowest()
            let growthKiB = daemon.peakRSSKiB - before
            let boundKiB = (4 * bytes + (32 << 20)) >> 10
            rows.append("\(name) (\(bytes >> 20) MiB): \(outcome); slowest Health \(Int(worst * 1000)) ms; peak RSS +\(growthKiB >> 10) MiB (bound \(boundKiB >> 10) MiB)")
            #expect(worst < 0.25, "\(name): Health took \(Int(worst * 1000)) ms")
            #expect(failures == 0, "\(name): \(failures) Health calls failed")
            if ProcessInfo.processInfo.environment["BLIP_SANITIZER"] == nil {
                #expect(growthKiB <= boundKiB, "\(name): peak RSS +\(growthKiB) KiB, bound \(boundKiB) KiB")
            }
        }

        // 1. A 32 MiB image (not a valid one: received, hashed, refused by the decoder).
        var generator = SystemRandomNumberGenerator()
        let image = (0..<(32 << 20) / 8).flatMap { _ in withUnsafeBytes(of: generator.next() as UInt64) { Array($0) } }
        try measure("RPC caption of a 32 MiB image", bytes: image.count) {
            let client = try RawClient(path: daemon.socketPath)
            let response = try client.caption(CaptionRequest(image: .init(data: image)), timeout: 60)
            return response.statusCode.name
        }

        // 2. A 40 MiB JSON body (a 30 MiB image, base64-encoded in a data: URL).
        let base64 = Data(image.prefix(30 << 20)).base64EncodedString()
        let json = Array(#"{"model": "blip", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,\#(base64)"}}]}]}"#.utf8)
        try measure("HTTP chat completion of a \(json.count >> 20) MiB JSON body", bytes: json.count) {
            let client = try RawClient(path: http)
            try client.sendRaw(Array("POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: \(json.count)\r\n\r\n".utf8) + json)
            let answer = String(decoding: try client.readAll(timeout: 60), as: UTF8.self)
            return String(answer.prefix(12))
        }

        // 3. A frame of millions of tiny unknown fields (three bytes each).
        let flood = CaptionRequest(image: .init(data: [1])).encoded() + Array(repeating: [0x98, 0x06, 0x01] as [UInt8], count: 8 << 20).flatMap { $0 }
        try measure("RPC caption frame of \(flood.count / 3 / 1_000_000) million unknown fields", bytes: flood.count) {
            let client = try RawClient(path: daemon.socketPath)
            let response = try client.call(RPCMethod.caption.rawValue, payload: flood, timeout: 60)
            return "\(response.statusCode.name)"
        }

        // 4. A million pipelined HTTP requests from a client that never reads.
        let request = Array("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n".utf8)
        try measure("a million pipelined HTTP requests, never read", bytes: request.count * 1_000_000) {
            let hog = try RawClient(path: http)
            let chunk = Array(repeating: request, count: 1000).flatMap { $0 }
            var sent = 0
            for _ in 0..<1000 {
                guard (try? hog.sendRaw(chunk)) != nil else { break }
                sent += 1000
            }
            #expect(sent < 1_000_000, "the daemon read every request of a client that reads nothing")
            return "the daemon stopped reading after at most \(sent + 1000) requests and dropped the client"
        }
        print("== \(#function)")
        for row in rows { print("   \(row)") }
    }
}
