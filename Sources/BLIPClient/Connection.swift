#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import BLIPProtocol
import BLIPSocket

/// One socket to the daemon and the calls in flight on it.
///
/// A reader queue blocks in `recv` and hands each response to the call with its id; a writer
/// queue sends frames in order, so a caller never blocks on a slow or hung daemon (its deadline
/// timer still fires). Once the connection fails, every call in flight gets the failure and the
/// connection is dead for good; ``CaptionClient`` then opens a new one for the next call.
final class Connection: Sendable {
    /// A call waiting for its response.
    private struct Pending {
        var continuation: CheckedContinuation<Envelope, any Error>
        /// Fires the local deadline; cancelled when the call completes first.
        var timer: DispatchWorkItem?
    }

    private struct State {
        var pending: [UInt64: Pending] = [:]
        var nextCallID: UInt64 = 1
        /// Set once, when the connection fails or is closed; later calls get it at once.
        var failure: CaptionClientError?
        /// Whether ``fd`` is closed; checked under the lock so nothing touches a reused number.
        var fdClosed = false
    }

    /// Extra time the local timer allows over the deadline sent to the daemon, for transfer
    /// and scheduling (docs/protocol.md §2.2: wait a little longer than `timeout_us`).
    static let deadlineGrace: Duration = .milliseconds(250)

    let path: String
    private let fd: Int32
    private let maxFrameBytes: Int
    private let state = LockedState(State())
    /// Serializes writes and, last of all, the `close` of ``fd``.
    private let writer: DispatchQueue
    private let reader: DispatchQueue

    /// Connects to `path` and starts reading.
    /// - Throws: ``CaptionClientError`` for a missing daemon, a permission problem, or a connect
    ///   that did not finish within `timeout`.
    init(path: String, maxFrameBytes: Int, connectTimeout: Duration) throws(CaptionClientError) {
        self.path = path
        self.maxFrameBytes = maxFrameBytes
        fd = try UnixSocket.connect(path: path, timeout: connectTimeout)
        writer = DispatchQueue(label: "blip-client.writer")
        reader = DispatchQueue(label: "blip-client.reader")
        reader.async { self.readLoop() }
    }

    /// Whether calls can still be started on this connection.
    var isAlive: Bool {
        state.withLock { $0.failure == nil }
    }

    /// Sends a request and waits for its response (any status).
    ///
    /// - Throws: `CancellationError` when the task is cancelled (a cancel frame is sent);
    ///   ``CaptionClientError/deadlineExceeded`` when no response came within `timeout` plus
    ///   ``deadlineGrace``; the connection's failure when it breaks first.
    func call(method: RPCMethod, payload: [UInt8], timeout: Duration) async throws -> Envelope {
        let callID = state.withLock { state in
            defer { state.nextCallID &+= 1 }
            return state.nextCallID
        }
        let envelope = Envelope(callID: callID, kind: .request, method: method.rawValue,
                                timeout: timeout, payload: payload)
        let frame: [UInt8]
        do {
            frame = try FrameEncoder().encode(envelope.encoded())
        } catch {
            throw CaptionClientError.rpc(RPCError(mapping: error))
        }

        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let failure = state.withLock { state -> CaptionClientError? in
                    if let failure = state.failure { return failure }
                    state.pending[callID] = Pending(continuation: continuation)
                    return nil
                }
                if let failure {
                    continuation.resume(throwing: failure)
                    return
                }
                write(frame)
                // A Dispatch timer, not Task.sleep: it fires even when the caller's code keeps
                // every cooperative thread busy.
                let timer = DispatchWorkItem { [weak self] in
                    self?.abandon(callID, with: CaptionClientError.deadlineExceeded)
                }
                DispatchQueue.global().asyncAfter(deadline: Self.dispatchTime(after: timeout + Self.deadlineGrace),
                                                  execute: timer)
                let completed = state.withLock { state in
                    guard state.pending[callID] != nil else { return true }
                    state.pending[callID]?.timer = timer
                    return false
                }
                if completed { timer.cancel() }
                // A cancellation that came before the call was registered found nothing to
                // cancel; catch it here.
                if Task.isCancelled { abandon(callID, with: CancellationError()) }
            }
        } onCancel: {
            abandon(callID, with: CancellationError())
        }
    }

    /// `now + duration` as a dispatch time, saturating instead of overflowing.
    private static func dispatchTime(after duration: Duration) -> DispatchTime {
        let (seconds, attoseconds) = max(duration, .zero).components
        let (nanoseconds, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow, nanoseconds < UInt64(Int64.max) / 2 else { return .distantFuture }
        return DispatchTime(uptimeNanoseconds: DispatchTime.now().uptimeNanoseconds
                            + nanoseconds + UInt64(attoseconds / 1_000_000_000))
    }

    /// Fails the whole connection: every call in flight gets `error`, later calls too.
    func fail(_ error: CaptionClientError) {
        let pending = state.withLock { state -> [Pending] in
            guard state.failure == nil else { return [] }
            state.failure = error
            // Wakes the reader (recv returns 0) and any blocked write; the reader then closes fd.
            if !state.fdClosed { shutdown(fd, Int32(SHUT_RDWR)) }
            defer { state.pending = [:] }
            return Array(state.pending.values)
        }
        for call in pending {
            call.timer?.cancel()
            call.continuation.resume(throwing: error)
        }
    }

    /// Ends call `callID` locally with `error` and tells the daemon to drop it.
    private func abandon(_ callID: UInt64, with error: any Error) {
        guard let call = state.withLock({ $0.pending.removeValue(forKey: callID) }) else { return }
        call.timer?.cancel()
        call.continuation.resume(throwing: error)
        // Its late response, if any, finds no call and is dropped; ids are never reused.
        if let frame = try? FrameEncoder().encode(Envelope.cancel(callID: callID).encoded()) {
            write(frame)
        }
    }

    private func write(_ frame: [UInt8]) {
        writer.async { [self] in
            // Only this queue closes fd, so it cannot close between this check and the send.
            guard !state.withLock({ $0.fdClosed }) else { return }
            if let code = UnixSocket.sendAll(fd, frame) {
                fail(.connectionLost("writing to \(path) failed: \(errnoText(code))"))
            }
        }
    }

    private func readLoop() {
        var decoder = FrameDecoder(maxFrameBytes: maxFrameBytes)
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        reading: while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                if errno == EINTR { continue }
                fail(.connectionLost("reading from \(path) failed: \(errnoText(errno))"))
                break
            }
            if n == 0 {
                let detail = decoder.hasPartialFrame ? " in the middle of a reply" : ""
                fail(.connectionLost("the daemon at \(path) closed the connection\(detail)"))
                break
            }
            decoder.append(Array(buffer[0..<n]))
            do {
                while let frame = try decoder.nextFrame() {
                    guard deliver(frame) else { break reading }
                }
            } catch {
                fail(.protocolViolation(error.description))
                break
            }
        }
        // After every queued write (they fail fast once shut down), so fd is never reused under one.
        writer.async { [self] in
            state.withLock { state in
                state.fdClosed = true
                close(fd)
            }
        }
    }

    /// Hands one response frame to its call.
    /// - Returns: `false` when the frame ended the connection.
    private func deliver(_ frame: [UInt8]) -> Bool {
        let envelope: Envelope
        do {
            envelope = try Envelope(decoding: frame)
        } catch {
            fail(.protocolViolation("a reply frame is not a valid envelope: \(error)"))
            return false
        }
        guard envelope.kind == .response else {
            fail(.protocolViolation("the daemon sent a \(envelope.kind) envelope; servers send only responses"))
            return false
        }
        guard envelope.callID != 0 else {
            // §2.4: an error about the connection itself; the daemon closes it next.
            let error = envelope.responseStatus.error
                ?? RPCError(code: .unknown, message: "the daemon sent an OK response with call id 0")
            fail(.rpc(error))
            return false
        }
        // An unknown id is a call already cancelled or timed out here: drop its late reply.
        guard let call = state.withLock({ $0.pending.removeValue(forKey: envelope.callID) }) else { return true }
        call.timer?.cancel()
        call.continuation.resume(returning: envelope)
        return true
    }
}
