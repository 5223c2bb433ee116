import Foundation

/// `preprocessor_config.json` (BlipImageProcessor): the square size images are resized to and the
/// normalisation constants. Absent keys take transformers' defaults (OpenAI CLIP mean/std).
public struct PreprocessorConfig: Sendable, Equatable, Decodable {
    public var imageSize: Int
    public var imageMean: [Float] = [0.48145466, 0.4578275, 0.40821073]
    public var imageStd: [Float] = [0.26862954, 0.26130258, 0.27577711]
    public var rescaleFactor: Double = 1.0 / 255.0

    enum CodingKeys: String, CodingKey {
        case size, imageMean = "image_mean", imageStd = "image_std", rescaleFactor = "rescale_factor"
    }

    public init(imageSize: Int) { self.imageSize = imageSize }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if let size = try? c.decodeIfPresent([String: Int].self, forKey: .size) {
            guard let h = size["height"] ?? size["shortest_edge"], (size["width"] ?? h) == h else {
                throw DecodingError.dataCorruptedError(forKey: .size, in: c, debugDescription: "size \(size) must be a square {height, width}")
            }
            imageSize = h
        } else if let size = try? c.decodeIfPresent(Int.self, forKey: .size) {
            imageSize = size
        } else {
            imageSize = 384
        }
        imageMean = try c.decodeIfPresent([Float].self, forKey: .imageMean) ?? imageMean
        imageStd = try c.decodeIfPresent([Float].self, forKey: .imageStd) ?? imageStd
        rescaleFactor = try c.decodeIfPresent(Double.self, forKey: .rescaleFactor) ?? rescaleFactor
    }

    /// Reads `preprocessor_config.json`, or the `image_processor` part of transformers 5's
    /// `processor_config.json`; without either, the vision config's image size and CLIP's constants.
    static func load(folder: ModelFolder, visionImageSize: Int) throws(ModelError) -> PreprocessorConfig {
        let url: URL
        let config: PreprocessorConfig
        do {
            if let data = try? Data(contentsOf: folder.preprocessor) {
                url = folder.preprocessor
                config = try JSONDecoder().decode(PreprocessorConfig.self, from: data)
            } else if let data = try? Data(contentsOf: folder.processor) {
                url = folder.processor
                config = try JSONDecoder().decode(ProcessorConfig.self, from: data).imageProcessor
            } else {
                return PreprocessorConfig(imageSize: visionImageSize)
            }
        } catch {
            throw .badConfig(folder.preprocessor.path, "\(error)")
        }
        guard config.imageSize == visionImageSize else {
            throw .badConfig(url.path, "resize size \(config.imageSize) differs from the vision model's image_size \(visionImageSize)")
        }
        guard config.imageMean.count == 3, config.imageStd.count == 3, config.imageStd.allSatisfy({ $0 > 0 }) else {
            throw .badConfig(url.path, "image_mean and image_std need three values each, std > 0")
        }
        return config
    }
}

/// transformers 5's `processor_config.json`, which nests the image processor's settings.
struct ProcessorConfig: Decodable {
    var imageProcessor: PreprocessorConfig
    enum CodingKeys: String, CodingKey { case imageProcessor = "image_processor" }
}
