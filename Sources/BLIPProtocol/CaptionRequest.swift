import BlipProtoC

/// `/blip.v1.Captioner/Caption`'s request: one image, an optional prompt (or several prompts),
/// decoding options.
public struct CaptionRequest: Sendable, Hashable {
    /// The picture to caption and how its bytes are laid out.
    public struct Image: Sendable, Hashable {
        /// How ``data`` is encoded.
        public enum Format: UInt32, Sendable, Hashable, CaseIterable {
            /// JPEG or PNG, recognised by the file signature.
            case auto = 0
            case jpeg = 1
            case png = 2
            /// Packed 8-bit R,G,B rows, top row first, no padding: `width * height * 3` bytes.
            case rawRGB8 = 3
        }

        /// The image file (JPEG, PNG) or pixels (raw RGB8).
        public var data: [UInt8]
        public var format: Format
        /// Pixels per row; required for ``Format/rawRGB8``, ignored otherwise (0 = unset).
        public var width: UInt32
        /// Rows; required for ``Format/rawRGB8``, ignored otherwise (0 = unset).
        public var height: UInt32
        /// Whether to turn a JPEG upright by its EXIF Orientation tag; `nil` means yes.
        public var applyEXIFOrientation: Bool?

        /// - Parameters:
        ///   - data: The file or pixel bytes.
        ///   - format: How `data` is encoded; `.auto` tells JPEG from PNG by signature.
        ///   - width: Pixels per row, for raw RGB8.
        ///   - height: Rows, for raw RGB8.
        ///   - applyEXIFOrientation: `nil` for the default (apply it).
        public init(
            data: [UInt8] = [], format: Format = .auto, width: UInt32 = 0, height: UInt32 = 0,
            applyEXIFOrientation: Bool? = nil
        ) {
            self.data = data
            self.format = format
            self.width = width
            self.height = height
            self.applyEXIFOrientation = applyEXIFOrientation
        }

        /// ``applyEXIFOrientation`` with its default applied.
        public var appliesEXIFOrientation: Bool { applyEXIFOrientation ?? true }
    }

    public var image: Image
    /// Text the caption continues, e.g. `"a picture of"`; `nil` for an unconditional caption.
    /// Answered in `CaptionResponse.candidates`. Not together with ``prompts``.
    public var prompt: String?
    /// Generation parameters; unset ones take the server's defaults.
    public var options: DecodingOptions
    /// Several captions of the image in one call, one per prompt (`""` = unconditional), answered
    /// in order in `CaptionResponse.results`; one image encode serves them all. Empty: the call
    /// is a single caption of ``prompt``.
    public var prompts: [String]

    /// The first of the request's strings that holds a NUL byte, named as on the wire (`prompt`,
    /// `prompts`, `options.bad_words`); nil when none does. protobuf-c writes strings as C strings,
    /// so such a string would be sent cut at its NUL: senders refuse it instead (docs/protocol.md §2).
    public var fieldHoldingNUL: String? {
        if prompt?.utf8.contains(0) == true { return "prompt" }
        if prompts.contains(where: { $0.utf8.contains(0) }) { return "prompts" }
        if options.badWords.contains(where: { $0.utf8.contains(0) }) { return "options.bad_words" }
        return nil
    }

    /// - Parameters:
    ///   - image: The picture.
    ///   - prompt: Text the caption continues, or `nil`.
    ///   - options: Generation parameters; leave unset for the server's defaults.
    ///   - prompts: Several prompts instead of `prompt`.
    public init(image: Image = Image(), prompt: String? = nil, options: DecodingOptions = DecodingOptions(),
                prompts: [String] = []) {
        self.image = image
        self.prompt = prompt
        self.options = options
        self.prompts = prompts
    }

    /// The prompts the call asks for, in response order: ``prompts``, or the one ``prompt``
    /// (`nil` = unconditional).
    public var requestedPrompts: [String?] { prompts.isEmpty ? [prompt] : prompts.map { $0 } }
}

extension CaptionRequest: WireMessage {
    public static let messageName = "CaptionRequest"

    public init(decoding bytes: [UInt8]) throws(MessageDecodingError) {
        self = try ProtobufC.decode(
            bytes, descriptor: blip__v1__caption_request__descriptor,
            unpack: { blip__v1__caption_request__unpack(nil, $0, $1) },
            free: { blip__v1__caption_request__free_unpacked($0, nil) },
            read: { (c: borrowing Blip__V1__CaptionRequest) throws(MessageDecodingError) in
                try CaptionRequest(c)
            }
        )
    }

    public func encoded() -> [UInt8] {
        CArena.with { arena in
            var c = Blip__V1__CaptionRequest()
            blip__v1__caption_request__init(&c)
            c.image = image.cMessage(in: arena)
            c.prompt = arena.optionalCString(prompt)
            c.options = options.cMessage(in: arena)
            c.n_prompts = prompts.count
            c.prompts = arena.array(prompts.map { Optional(arena.cString($0)) })
            return ProtobufC.encode(
                c,
                packedSize: { blip__v1__caption_request__get_packed_size($0) },
                pack: { blip__v1__caption_request__pack($0, $1) }
            )
        }
    }

    private init(_ c: borrowing Blip__V1__CaptionRequest) throws(MessageDecodingError) {
        var prompts: [String] = []
        for i in 0..<c.n_prompts {
            prompts.append(try ProtobufC.string(c.prompts[i], message: Self.messageName, field: "prompts"))
        }
        self.init(
            image: try Image(c.image),
            prompt: try ProtobufC.optionalString(c.prompt, message: Self.messageName, field: "prompt"),
            options: try DecodingOptions(c.options),
            prompts: prompts
        )
    }
}

extension CaptionRequest.Image {
    init(_ c: UnsafeMutablePointer<Blip__V1__Image>?) throws(MessageDecodingError) {
        self.init()
        guard let c = c?.pointee else { return }
        let raw = c.has_format != 0 ? c.format.rawValue : 0
        guard let format = Format(rawValue: raw) else {
            throw .invalidField(message: "Image", field: "format",
                                reason: "is \(raw); expected AUTO (0), JPEG (1), PNG (2) or RAW_RGB8 (3)")
        }
        self.format = format
        data = ProtobufC.bytes(c.data)
        width = c.width
        height = c.height
        applyEXIFOrientation = ProtobufC.optional(c.has_apply_exif_orientation, c.apply_exif_orientation != 0)
    }

    /// The image as protobuf-c's struct; zero / empty fields are left unset.
    func cMessage(in arena: CArena) -> UnsafeMutablePointer<Blip__V1__Image>? {
        guard self != Self() else { return nil }
        var c = Blip__V1__Image()
        blip__v1__image__init(&c)
        if !data.isEmpty { c.has_data = 1; c.data = arena.binary(data) }
        if format != .auto { c.has_format = 1; c.format = Blip__V1__ImageFormat(rawValue: format.rawValue) }
        if width != 0 { c.has_width = 1; c.width = width }
        if height != 0 { c.has_height = 1; c.height = height }
        if let applyEXIFOrientation {
            c.has_apply_exif_orientation = 1
            c.apply_exif_orientation = applyEXIFOrientation.protobufC
        }
        return arena.store(c)
    }
}
