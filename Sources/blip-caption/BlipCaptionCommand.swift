import ArgumentParser
import Foundation
import BLIPClient

/// `blip-caption`: caption images with blip-captiond or, with `--local`, in this process.
@main
@available(macOS 10.15, *)
struct BlipCaptionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "blip-caption",
        abstract: "Caption images with a BLIP model (Salesforce/blip-image-captioning-large).",
        discussion: "`caption` is the default subcommand: `blip-caption --local photo.jpg` works too.",
        version: ReleaseVersion.line(for: "blip-caption"),
        subcommands: [CaptionCommand.self, HealthCommand.self, InfoCommand.self, BenchCommand.self],
        defaultSubcommand: CaptionCommand.self)

    /// ArgumentParser's main over the arranged words (``CommandWords``).
    static func main() async {
        let commands = configuration.subcommands.map { $0._commandName } + ["help"]
        switch CommandWords.arrange(Array(CommandLine.arguments.dropFirst()), commands: commands) {
        case .arguments(let words):
            await main(words)
        case .unknownCommand(let message):
            StandardError().write("blip-caption: \(message)")
            StandardError().write("Usage: blip-caption [\(commands.dropLast().joined(separator: "|"))] [options] [images …] (see blip-caption --help)")
            Foundation.exit(64)
        }
    }
}
