import BLIPCaptionService
import BLIPDaemon
import BLIPEngine
import BLIPServer
import Foundation

/// Creates the captioning service the daemon serves, from the parsed options
/// (`options.modelDirectory` is `--model`, else `$BLIP_MODEL`, else `nil`: the Hugging Face cache).
@Sendable func makeService(_ options: DaemonOptions) throws -> any CaptionService {
    let folder = try ModelFolder.locate(explicit: options.modelDirectory)
    let captioner = try Captioner(
        folder: folder,
        imageLimits: ImageLimits(maxBytes: options.maxImageBytes, maxPixels: options.maxPixels),
        generationLimits: GenerationLimits(maxBeams: options.maxBeams, maxReturnSequences: options.maxBeams),
        precision: options.precision,
        configuration: Captioner.Configuration(maxBatch: options.maxBatch, encodeLanes: options.encodeLanes,
                                               featureCacheBytes: options.featureCacheMb << 20))
    return EngineCaptionService(captioner: captioner, fullWarmUp: options.fullWarmUp)
}
