import ArgumentParser
import BLIPDaemon
import BLIPProtocol

/// `blip-captiond`: the socket-activated captioning daemon — ``Daemon``'s start-up over the engine.
@main
struct BlipCaptiond: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "blip-captiond",
        abstract: "Serve BLIP image captions over a Unix socket (length-prefixed protobuf, blip.v1).",
        discussion: """
            Under systemd (blip-captiond.socket + blip-captiond.service) the daemon adopts the \
            listening socket systemd passes; started by hand it binds --socket itself. SIGTERM or \
            SIGINT drains: calls in flight get --grace-period seconds, the rest UNAVAILABLE. \
            SIGHUP reloads the model folder without dropping the socket.
            """,
        version: ReleaseVersion.line(for: "blip-captiond")
    )

    @OptionGroup var options: DaemonOptions

    func run() throws {
        try Daemon(options: options, makeService: makeService).run()
    }
}
