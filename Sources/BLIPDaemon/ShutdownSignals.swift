import BLIPServer
import Dispatch
import Glibc
import BLIPProtocol

/// Turns SIGTERM and SIGINT into a clean drain. Installed first thing, so a signal during
/// model loading is remembered and the daemon stops as soon as the server exists (instead of
/// dying without STOPPING=1).
/// `@unchecked`: `sources` is written once in `init` and only kept alive afterwards.
final class ShutdownSignals: @unchecked Sendable {
    private let server = LockedState<CaptionServer?>(nil)
    private let requested = LockedState(false)
    private let sources: [any DispatchSourceSignal]

    init() {
        var sources: [any DispatchSourceSignal] = []
        for number in [SIGTERM, SIGINT] {
            signal(number, SIG_IGN)  // handled by the dispatch source instead
            sources.append(DispatchSource.makeSignalSource(signal: number, queue: .global()))
        }
        self.sources = sources
        for source in sources {
            source.setEventHandler { [self] in stop() }
            source.resume()
        }
    }

    /// From now on a signal shuts `server` down; a signal that came earlier does so at once.
    func attach(_ server: CaptionServer) {
        self.server.withLock { $0 = server }
        if requested.withLock({ $0 }) { server.shutdown() }
    }

    private func stop() {
        requested.withLock { $0 = true }
        server.withLock { $0 }?.shutdown()
    }
}
