import Glibc

/// SIGBUS while the model's weights are still the mapped file's pages (the seconds between READY
/// and the end of `BlipModel.ownWeights()`), which is what a truncation of model.safetensors in
/// that window causes: one line on stderr and a clean exit with status 75 (EX_TEMPFAIL), so
/// systemd's `Restart=on-failure` starts the daemon again on the file as it is now — instead of a
/// core dump. Only async-signal-safe calls (`write`, `_exit`) run in the handler.
enum WeightsFault {
    static let exitStatus: Int32 = 75

    static func install() {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in
            let line: StaticString = "blip-captiond: SIGBUS: a mapped file shrank under the daemon (most likely model.safetensors was truncated or overwritten in place while its weights were being copied at start-up); exiting with status 75 for systemd to restart it. Replace a model by renaming a complete copy into place (docs/daemon.md).\n"
            _ = write(2, line.utf8Start, line.utf8CodeUnitCount)
            _exit(WeightsFault.exitStatus)
        }
        sigemptyset(&action.sa_mask)
        sigaction(SIGBUS, &action, nil)
    }
}
