/// Everything that can be wrong with a model folder. Each message names the file or tensor and
/// says what to do about it.
public enum ModelError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No folder was given and none was found in the places searched.
    case notFound(searched: [String])
    /// A required file of the model folder is absent.
    case missingFile(String)
    case unreadableFile(String, String)
    case badConfig(String, String)
    case badSafeTensors(String, String)
    /// A `pytorch_model.bin` that is damaged or not what `torch.save` of a state dict writes.
    case badCheckpoint(String, String)
    /// A `pytorch_model.bin` whose pickle asks for more than a state dict needs (a global such as
    /// `posix.system`, an opcode such as `INST`): refused before anything in it is used.
    case unsafeCheckpoint(String, String)
    /// Weights in a format the engine does not read (TensorFlow, Flax, PyTorch's pre-1.6 format).
    case convertCheckpoint(String, String)
    case missingTensor(String)
    case unexpectedTensor(String)
    case shapeMismatch(tensor: String, expected: [Int], found: [Int])
    case unsupported(String)
    /// oneDNN could not make the products of a reduced precision on this CPU.
    case precisionUnavailable(String, String)

    public var description: String {
        switch self {
        case .notFound(let searched):
            return "model not found: looked in \(searched.joined(separator: ", ")); pass --model DIR or set BLIP_MODEL to a folder holding config.json and model.safetensors or pytorch_model.bin (e.g. from `huggingface-cli download Salesforce/blip-image-captioning-large`)"
        case .missingFile(let path):
            return "model folder is incomplete: \(path) is missing; download the whole checkpoint again"
        case .unreadableFile(let path, let reason):
            return "cannot read \(path): \(reason)"
        case .badConfig(let path, let detail):
            return "invalid model config \(path): \(detail)"
        case .badSafeTensors(let path, let detail):
            return "corrupt weights file \(path): \(detail); download the checkpoint again"
        case .badCheckpoint(let path, let detail):
            return "corrupt PyTorch checkpoint \(path): \(detail); download the checkpoint again, or use its model.safetensors"
        case .unsafeCheckpoint(let path, let detail):
            return "refusing to load \(path): its pickle \(detail), and only the globals and opcodes of a state dict are read (nothing in a checkpoint is executed); use the model's model.safetensors, or convert a checkpoint you trust (docs/daemon.md, \"Choosing a model\")"
        case .convertCheckpoint(let path, let detail):
            return "cannot read \(path): \(detail); convert it to model.safetensors with transformers (`BlipForConditionalGeneration.from_pretrained(DIR).save_pretrained(DIR)`, docs/daemon.md, \"Choosing a model\")"
        case .missingTensor(let name):
            return "weights file lacks tensor \(name); the checkpoint is incomplete or not a BlipForConditionalGeneration model"
        case .unexpectedTensor(let name):
            return "weights file holds unknown tensor \(name); the checkpoint is not a BlipForConditionalGeneration model matching its config.json"
        case .shapeMismatch(let name, let expected, let found):
            return "tensor \(name) has shape \(found) but config.json implies \(expected); config.json and model.safetensors do not belong together"
        case .unsupported(let detail):
            return "unsupported model: \(detail)"
        case .precisionUnavailable(let precision, let detail):
            return "--precision \(precision) cannot run on this CPU (\(detail)); use --precision fp32, and report the CPU (its /proc/cpuinfo flags) if it has AVX2"
        }
    }
}
