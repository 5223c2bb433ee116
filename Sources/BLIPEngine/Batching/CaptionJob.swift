/// One unit of work for the engine loop: an image and one or more prompts to caption it with.
public struct CaptionJob: Sendable {
    /// JPEG or PNG file bytes, or raw RGB8 pixels with `format: .rawRGB8(width:height:)`.
    public var image: [UInt8]
    /// `nil` to detect JPEG/PNG from the bytes.
    public var format: ImageFormat?
    /// Rotate/flip as the EXIF orientation tag says (transformers does not).
    public var applyEXIFOrientation: Bool
    /// One entry per caption wanted, each with its own prompt (`prompt` `nil` or empty: unconditional)
    /// and decoding parameters; results come back in this order.
    public var prompts: [GenerationParameters]
    /// When the job stops with ``CaptionJobError/deadlineExceeded``; `nil` for never.
    public var deadline: ContinuousClock.Instant?
    /// Receives each prompt's caption text as it is generated, for prompts whose search makes one
    /// sequence token by token (``GenerationParameters/streamsText``): `(prompt index, text)`, in
    /// order, on the loop's thread (keep it short), all before the completion. A prompt's pieces
    /// concatenate to its caption's text exactly (``CaptionTextStream``).
    public var onText: (@Sendable (_ prompt: Int, _ text: String) -> Void)?

    public init(image: [UInt8], format: ImageFormat? = nil, applyEXIFOrientation: Bool = true,
                prompts: [GenerationParameters], deadline: ContinuousClock.Instant? = nil,
                onText: (@Sendable (_ prompt: Int, _ text: String) -> Void)? = nil) {
        self.image = image
        self.format = format
        self.applyEXIFOrientation = applyEXIFOrientation
        self.prompts = prompts
        self.deadline = deadline
        self.onText = onText
    }
}

/// What a finished job hands back.
public struct CaptionJobResult: Sendable, Equatable {
    /// One list per prompt, in the job's order: `numReturnSequences` candidates each.
    public var captions: [[CaptionCandidate]]
    public var timings: CaptionTimings
}

/// Names a submitted job, to cancel it.
public struct CaptionJobHandle: Hashable, Sendable {
    /// Unique among the loop's jobs.
    public let id: UInt64
    public init(id: UInt64) { self.id = id }
}

/// Why a job ended without captions, other than a bad image or bad parameters.
public enum CaptionJobError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Its deadline passed (while waiting, encoding or generating).
    case deadlineExceeded
    /// ``DecodeLoop/cancel(_:)`` was called for it.
    case cancelled
    /// A job needs at least one prompt.
    case noPrompts

    public var description: String {
        switch self {
        case .deadlineExceeded: "the caption's deadline passed; allow more time"
        case .cancelled: "the caption was cancelled"
        case .noPrompts: "a caption job needs at least one prompt"
        }
    }
}
