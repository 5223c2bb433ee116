import ArgumentParser
import BLIPEngine
import Foundation

/// `blip-caption caption`: caption files, folders (recursively) or stdin (`-`).
struct CaptionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "caption",
        abstract: "Caption images: files, directories (recursively) or - for standard input.")

    @Flag(help: "Run the engine in this process instead of asking blip-captiond.") var local = false
    @Option(help: "Model folder (default: $BLIP_MODEL, then the Hugging Face cache).") var model: String?
    @Flag(help: "Print one JSON object per image (JSON Lines) instead of plain captions.") var json = false
    @OptionGroup(title: "Decoding") var decoding: DecodingOptions
    @Argument(help: "Image files (JPEG, PNG), directories, or - for standard input.") var images: [String]

    func validate() throws {
        if images.isEmpty { throw ValidationError("give at least one image, directory or -") }
    }

    func run() throws {
        guard local else {
            throw ValidationError("this build talks to no daemon yet: pass --local to caption in this process")
        }
        let inputs = try ImageInputs.expand(images)
        let log = StandardError()
        let started = ContinuousClock.now
        let captioner: Captioner
        do {
            captioner = try Captioner(folder: try ModelFolder.locate(explicit: model))
        } catch {
            log.write("blip-caption: \(error)")
            throw ExitCode(2)
        }
        log.write("blip-caption: loaded \(captioner.model.modelID) in \(String(format: "%.2f", (ContinuousClock.now - started).seconds)) s; OpenBLAS kernel \(BLASRuntime.coreName), \(BLASRuntime.threads) threads")
        let output = CaptionOutput(json: json)
        let parameters = decoding.parameters
        var failures = 0
        for input in inputs {
            do {
                let bytes = try input.read()
                let result = try captioner.caption(image: bytes, parameters: parameters, applyEXIFOrientation: !decoding.noExif)
                output.write(image: input.name, result: result)
            } catch {
                failures += 1
                log.write("blip-caption: \(input.name): \(error)")
                output.write(image: input.name, error: "\(error)")
            }
        }
        if failures > 0 {
            log.write("blip-caption: \(failures) of \(inputs.count) images failed")
            throw ExitCode(1)
        }
    }
}

/// Lines for people on stderr; library code never prints, the executable does.
struct StandardError {
    func write(_ line: String) { FileHandle.standardError.write(Data((line + "\n").utf8)) }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
