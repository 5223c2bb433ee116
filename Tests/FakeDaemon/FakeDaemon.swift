import ArgumentParser
import BLIPDaemon
import BLIPTestSupport

/// `blip-captiond-fake`, for end-to-end tests only (never packaged): the daemon's own start-up,
/// signals, reload and exit (``Daemon``) over the tests' ``FakeService`` instead of a model, so
/// tests can run it under systemd-socket-activate without a model.
@main
struct FakeDaemon: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "blip-captiond-fake",
        abstract: "blip-captiond's start-up over a fake engine (no model), for the project's end-to-end tests.")

    @OptionGroup var options: DaemonOptions

    func run() throws {
        try Daemon(options: options, makeService: { _ in FakeService() }).run()
    }
}
