import ArgumentParser
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
}
