/// The fields of OpenAI's chat-completions body that this daemon reads, decoded by type (the
/// rest are skipped unread). `null` counts as absent, as in OpenAI's API.
struct ChatCompletionBody: Decodable {
    var model: String?
    var stream: Bool?
    var messages: [Message]?
    var n: Int?
    var maxTokens: Int?
    var maxCompletionTokens: Int?
    var temperature: Double?
    var topP: Double?
    var seed: Int64?
    /// `stop`: one text or up to 4.
    var stop: [String]?
    /// `stream_options.include_usage`.
    var includeUsage: Bool?
    /// The first field present that asks for what BLIP cannot do (tools, audio, formats, logprobs).
    var unsupported: String?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case model, stream, messages, n, temperature, seed, stop
        case streamOptions = "stream_options"
        case maxTokens = "max_tokens", maxCompletionTokens = "max_completion_tokens", topP = "top_p"
        case tools, toolChoice = "tool_choice", functions, functionCall = "function_call", audio
        case responseFormat = "response_format", logprobs
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        model = try c.decodeIfPresent(String.self, forKey: .model)
        stream = try c.decodeIfPresent(Bool.self, forKey: .stream)
        messages = try c.decodeIfPresent([Message].self, forKey: .messages)
        n = try Self.integer(c, .n)
        maxTokens = try Self.integer(c, .maxTokens)
        maxCompletionTokens = try Self.integer(c, .maxCompletionTokens)
        temperature = try c.decodeIfPresent(Double.self, forKey: .temperature)
        topP = try c.decodeIfPresent(Double.self, forKey: .topP)
        seed = try Self.integer(c, .seed)
        if c.contains(.stop), try !c.decodeNil(forKey: .stop) {
            if let one = try? c.decode(String.self, forKey: .stop) {
                stop = [one]
            } else {
                do { stop = try c.decode([String].self, forKey: .stop) } catch {
                    throw DecodingError.typeMismatch([String].self, .init(codingPath: [CodingKeys.stop], debugDescription: "stop"))
                }
            }
        }
        if c.contains(.streamOptions), try !c.decodeNil(forKey: .streamOptions) {
            includeUsage = try c.decode(StreamOptions.self, forKey: .streamOptions).includeUsage
        }
        for key: CodingKeys in [.tools, .toolChoice, .functions, .functionCall, .audio, .responseFormat, .logprobs]
        where c.contains(key) {
            guard try !c.decodeNil(forKey: key) else { continue }
            if key == .logprobs, (try? c.decode(Bool.self, forKey: key)) == false { continue }
            unsupported = key.rawValue
            break
        }
    }

    /// An integer field; a number with a fraction or beyond the type is the wrong type, named by
    /// its key (Foundation's own error for it carries no coding path).
    static func integer<Integer: FixedWidthInteger & Decodable>(_ c: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys) throws -> Integer? {
        guard c.contains(key), try !c.decodeNil(forKey: key) else { return nil }
        if let value = try? c.decode(Integer.self, forKey: key) { return value }
        throw DecodingError.typeMismatch(Int.self, .init(codingPath: c.codingPath + [key], debugDescription: "not an integer"))
    }

    struct StreamOptions: Decodable {
        var includeUsage: Bool?
        enum CodingKeys: String, CodingKey { case includeUsage = "include_usage" }
    }

    struct Message: Decodable {
        var role: String?
        var content: Content

        enum CodingKeys: String, CodingKey { case role, content }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            role = try? c.decodeIfPresent(String.self, forKey: .role)
            content = (try? c.decodeIfPresent(Content.self, forKey: .content)) ?? .other
        }
    }

    /// A message's content: text, or parts; anything else (an assistant's `null`) is `other`, which
    /// only the last user message may not be.
    enum Content: Decodable {
        case text(String)
        case parts([Part])
        case other

        init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let text = try? c.decode(String.self) {
                self = .text(text)
            } else if let parts = try? c.decode([Part].self) {
                self = .parts(parts)
            } else {
                self = .other
            }
        }
    }

    /// One content part: `{"type": "text", "text": …}` or `{"type": "image_url", "image_url": {"url": …}}`
    /// (the URL alone as `image_url` is accepted too).
    struct Part: Decodable {
        var type: String?
        var text: String?
        var imageURL: String?

        enum CodingKeys: String, CodingKey { case type, text, imageURL = "image_url" }
        private enum URLKeys: String, CodingKey { case url }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            type = try? c.decodeIfPresent(String.self, forKey: .type)
            text = try? c.decodeIfPresent(String.self, forKey: .text)
            if let url = try? c.decodeIfPresent(String.self, forKey: .imageURL) {
                imageURL = url
            } else if let nested = try? c.nestedContainer(keyedBy: URLKeys.self, forKey: .imageURL) {
                imageURL = try? nested.decodeIfPresent(String.self, forKey: .url)
            }
        }
    }
}
