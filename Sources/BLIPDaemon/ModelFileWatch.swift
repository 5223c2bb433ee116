import BLIPEngine
import BLIPProtocol
import Dispatch
import Foundation

/// Notices when the weights file the running model was read from changes on disk (truncated,
/// rewritten in place, replaced) and says so once in the log. The model itself is unaffected: its
/// weights live in memory the daemon owns (`SafeTensorsFile`), so nothing here can crash it or
/// change its captions; the line tells the operator that a SIGHUP is needed to load the new file.
/// `@unchecked`: `loaded` and `reported` are guarded by `state`; `timer` is set once in `init`.
final class ModelFileWatch: @unchecked Sendable {
    private struct State {
        var loaded: (path: String, stamp: SafeTensorsFile.FileStamp)?
        var reported: SafeTensorsFile.FileStamp??
    }
    private let state = LockedState(State())
    private let timer: any DispatchSourceTimer

    /// Checks every `interval` and calls `log` with one line per distinct change.
    init(interval: DispatchTimeInterval = .seconds(2), log: @escaping @Sendable (String) -> Void) {
        timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "model-file-watch"))
        timer.schedule(deadline: .now() + interval, repeating: interval)
        timer.setEventHandler { [state] in
            let line: String? = state.withLock { s in
                guard let loaded = s.loaded else { return nil }
                let now = SafeTensorsFile.FileStamp.current(path: loaded.path)
                guard now != loaded.stamp else { s.reported = nil; return nil }
                if let reported = s.reported, reported == now { return nil }
                s.reported = .some(now)
                let what = now.map { "now \($0)" } ?? "now missing"
                return "\(loaded.path) changed on disk since it was loaded (was \(loaded.stamp), \(what)); still serving the weights read into memory at load, unaffected; send SIGHUP (systemctl reload) once the new file is complete to load it"
            }
            if let line { log(line) }
        }
        timer.resume()
    }

    deinit { timer.cancel() }

    /// The file the serving model was read from (after a start or a reload); `nil` stops watching.
    func watch(_ model: BlipModel?) {
        state.withLock { $0 = State(loaded: model.map { ($0.weightsPath, $0.weightsStamp) }, reported: nil) }
    }
}
