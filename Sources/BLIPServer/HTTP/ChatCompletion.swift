import BLIPProtocol
import Foundation

/// OpenAI's chat-completions request, for this model's one job: the last user message holds one
/// `image_url` part (a `data:image/jpeg;base64,…` or `data:image/png;base64,…` URL) and optionally
/// text, which becomes the prompt. Everything else a request may carry that BLIP cannot do is
/// refused by name (``ChatCompletionError``).
struct ChatCompletionRequest {
    var model: String?
    var caption: CaptionRequest
    var stream: Bool
    /// Texts that end a caption where they first appear (OpenAI's `stop`, at most 4).
    var stop: [String]
    /// `stream_options.include_usage`: a last chunk with the usage and no choices.
    var includeUsage: Bool

    /// Parses and maps the body: typed decoding (``ChatCompletionBody``), so a body costs a small
    /// multiple of its bytes — no tree of objects — and a field of the wrong type is named.
    /// - Throws: ``ChatCompletionError`` naming what is missing or unsupported.
    /// - Parameter limits: the service's limits, which the options are checked against (in OpenAI's terms).
    init(json body: [UInt8], limits: OptionLimits = .unbounded) throws(ChatCompletionError) {
        let root: ChatCompletionBody
        do {
            root = try JSONDecoder().decode(ChatCompletionBody.self, from: Data(body))
        } catch let error as DecodingError {
            throw Self.describe(error)
        } catch {
            throw .invalid("We could not parse the JSON body of your request: it is not a JSON object.")
        }
        model = root.model
        stream = root.stream ?? false
        stop = root.stop ?? []
        guard stop.count <= 4 else {
            throw ChatCompletionError(message: "Invalid 'stop': array too long. Expected an array with maximum length 4, but got an array with length \(stop.count) instead.",
                                      param: "stop", code: "array_above_max_length")
        }
        includeUsage = root.includeUsage ?? false
        if let unsupported = root.unsupported {
            throw .unsupported("\(unsupported) is not supported: this model writes one caption of one image", param: unsupported)
        }
        guard let messages = root.messages, !messages.isEmpty else {
            throw .invalid("messages must be a non-empty array")
        }
        guard let last = messages.last(where: { $0.role == "user" }) else {
            throw .invalid("messages holds no user message")
        }
        var imageURL: String?
        var texts: [String] = []
        switch last.content {
        case .text(let text):
            texts.append(text)
        case .parts(let parts):
            for part in parts {
                switch part.type {
                case "text":
                    if let text = part.text { texts.append(text) }
                case "image_url":
                    guard imageURL == nil else { throw .unsupported("several images in one message are not supported: send one image_url part") }
                    imageURL = part.imageURL
                case let other:
                    throw .unsupported("content part type \(other.map { "\"\($0.bounded(64))\"" } ?? "(none)") is not supported: send one image_url part and optionally text")
                }
            }
        case .other:
            throw .invalid("the last user message's content must be a string or an array of parts")
        }
        guard let imageURL else { throw .invalid("the last user message holds no image_url part: send the image as a data:image/jpeg;base64,… or data:image/png;base64,… URL") }
        let image = try Self.decodeDataURL(imageURL)

        // OpenAI's fields → decoding options, each checked first against OpenAI's own range, then
        // against the option's row under the service's limits, and reported in OpenAI's terms.
        var options = DecodingOptions()
        func set(_ option: DecodingOption, _ name: String, _ value: OptionValue) throws(ChatCompletionError) {
            try Self.check(option, name, value, limits: limits)
            options[option] = value
        }
        if let n = root.n {
            try set(.numReturnSequences, "n", .count(n))
        }
        if let maxTokens = root.maxCompletionTokens ?? root.maxTokens {
            try set(.maxNewTokens, root.maxCompletionTokens != nil ? "max_completion_tokens" : "max_tokens", .count(maxTokens))
        }
        // temperature > 0 samples (n independent samples, one beam each); 0 or absent searches with
        // the default beams, at least n of them.
        if let temperature = root.temperature, temperature != 0 {
            try set(.temperature, "temperature", .real(temperature))
            options.doSample = true
        } else if let n = root.n, n > 1 {
            options.numBeams = UInt32(clamping: max(n, DecodingOption.defaultNumBeams(doSample: false)))
        } else if root.temperature == 0 {
            options.numBeams = 1
        }
        if let topP = root.topP { try set(.topP, "top_p", .real(topP)) }
        if let seed = root.seed { options.seed = UInt64(bitPattern: seed) }
        let prompt = texts.joined(separator: " ").trimmingCharacters(in: .whitespacesAndNewlines)
        caption = CaptionRequest(image: image, prompt: prompt.isEmpty ? nil : prompt, options: options)
    }

    /// "Invalid type for 'max_tokens': expected an integer." for a field of the wrong type, with
    /// `param` naming the field, as OpenAI answers.
    static func describe(_ error: DecodingError) -> ChatCompletionError {
        func path(_ context: DecodingError.Context) -> String? {
            let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
            return keys.isEmpty ? nil : keys.joined(separator: ".").replacingOccurrences(of: ".[", with: "[").bounded(128)
        }
        func expected(_ type: Any.Type) -> String {
            type == String.self ? "a string" : type == Bool.self ? "a boolean" : type == Double.self ? "a number"
                : type == Int.self || type == Int64.self ? "an integer" : type == [String].self ? "a string or an array of strings"
                : type == [String: Bool].self ? "an object" : "\(type)"
        }
        switch error {
        case .typeMismatch(let type, let context), .valueNotFound(let type, let context):
            guard let field = path(context) else { return .invalid("We could not parse the JSON body of your request: it is not a JSON object.") }
            return ChatCompletionError(message: "Invalid type for '\(field)': expected \(expected(type)).", param: field, code: "invalid_type")
        case .keyNotFound(let key, let context):
            let field = (path(context).map { $0 + "." } ?? "") + key.stringValue.bounded(64)
            return ChatCompletionError(message: "Missing required parameter: '\(field)'.", param: field, code: "missing_required_parameter")
        case .dataCorrupted(let context):
            guard let field = path(context) else { return .invalid("We could not parse the JSON body of your request: it is not valid JSON.") }
            // A number where an integer is expected (1.5, 1e30) reaches here: the field's type is wrong.
            return ChatCompletionError(message: "Invalid type for '\(field)': expected an integer.", param: field, code: "invalid_type")
        @unknown default:
            return .invalid("the body is not a valid chat-completions request")
        }
    }

    /// The image of a `data:` URL; `http(s)://` and other schemes are refused (the daemon fetches nothing).
    static func decodeDataURL(_ url: String) throws(ChatCompletionError) -> CaptionRequest.Image {
        guard url.hasPrefix("data:") else {
            throw .invalid("image_url must be a data: URL (data:image/jpeg;base64,… or data:image/png;base64,…); this daemon fetches nothing, so \(url.prefix(16).description.bounded(32))… URLs are refused")
        }
        guard let comma = url.firstIndex(of: ",") else { throw .invalid("image_url data: URL has no comma") }
        let header = url[url.index(url.startIndex, offsetBy: 5)..<comma]
        let format: CaptionRequest.Image.Format
        switch header {
        case "image/jpeg;base64", "image/jpg;base64": format = .jpeg
        case "image/png;base64": format = .png
        default: throw .invalid("image_url must be data:image/jpeg;base64,… or data:image/png;base64,…; got data:\(String(header).bounded(64))")
        }
        guard let data = Data(base64Encoded: String(url[url.index(after: comma)...]), options: .ignoreUnknownCharacters) else {
            throw .invalid("image_url's base64 data does not decode")
        }
        return CaptionRequest.Image(data: [UInt8](data), format: format)
    }
}

/// Why a chat-completions request is refused, as OpenAI reports it: a status (400 unless said)
/// and an error body naming the field (`param`) and a machine-readable `code`.
struct ChatCompletionError: Error {
    var message: String
    var param: String?
    var code: String?

    static func invalid(_ message: String, param: String? = nil) -> Self { Self(message: message, param: param) }
    static func unsupported(_ message: String, param: String? = nil) -> Self { Self(message: message, param: param, code: "unsupported_parameter") }
}

extension ChatCompletionRequest {
    /// Checks OpenAI field `name`, which sets `option`, against OpenAI's range for it and then the
    /// option's own range under `limits`; messages in OpenAI's words ("Invalid 'n': integer above
    /// maximum value. Expected a value <= 8, but got 9 instead.").
    static func check(_ option: DecodingOption, _ name: String, _ value: OptionValue,
                      limits: OptionLimits) throws(ChatCompletionError) {
        func bound(_ kind: String, above: Bool, _ limit: String, _ got: String) -> ChatCompletionError {
            ChatCompletionError(message: "Invalid '\(name)': \(kind) \(above ? "above maximum" : "below minimum") value. Expected a value \(above ? "<=" : ">=") \(limit), but got \(got) instead.",
                                param: name, code: "\(kind)_\(above ? "above_max" : "below_min")_value")
        }
        switch (option.row.openAI?.kind, value) {
        case let (.integer(minimum)?, .count(v)) where v < minimum:
            throw bound("integer", above: false, "\(minimum)", "\(v)")
        case let (.number(minimum, maximum)?, .real(v)) where v < minimum || v > maximum:
            throw bound("decimal", above: v > maximum, "\(Self.shown(v > maximum ? maximum : minimum))", Self.shown(v))
        default: break
        }
        if case let .integers(lower, upper, _) = option.row.allowed, case let .count(v) = value {
            if v < lower { throw bound("integer", above: false, "\(lower)", "\(v)") }
            if let most = upper.resolved(limits), v > most {
                throw bound("integer", above: true, "\(most)", "\(v)")
            }
        }
        do { try option.check(value, limits: limits) } catch {
            throw ChatCompletionError(message: "Invalid '\(name)': expected \(error.allowed), but got \(error.value) instead.", param: name,
                                      code: "invalid_value")
        }
    }

    static func shown(_ value: Double) -> String { value == value.rounded() && abs(value) < 1e15 ? "\(Int64(value))" : "\(value)" }
}

/// The reply of `POST /v1/chat/completions`, and its streamed chunks.
enum ChatCompletionReply {
    /// A candidate's content and finish reason after `stop`: cut before the first stop sequence
    /// (finish reason "stop"), or whole.
    static func content(_ candidate: CaptionResponse.Candidate, stop: [String]) -> (text: String, finishReason: String) {
        if let cut = StopSequences.cut(candidate.text, at: stop) { return (cut, "stop") }
        return (candidate.text, finishReason(candidate.finishReason))
    }

    /// The usage of a reply: prompt tokens (`[DEC]` and the prompt) and generated tokens.
    static func usage(_ response: CaptionResponse) -> [String: Any] {
        let completion = response.candidates.reduce(0) { $0 + Int($1.generatedTokens) }
        let prompt = response.candidates.first.map { $0.tokenIDs.count - Int($0.generatedTokens) } ?? 0
        return ["prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion]
    }

    /// The whole reply: one choice per candidate.
    static func body(_ response: CaptionResponse, id: String, created: Int, model: String, stop: [String] = []) -> [String: Any] {
        let choices = response.candidates.enumerated().map { index, candidate -> [String: Any] in
            let (text, finish) = content(candidate, stop: stop)
            return ["index": index, "message": ["role": "assistant", "content": text], "finish_reason": finish, "logprobs": NSNull()]
        }
        return ["id": id, "object": "chat.completion", "created": created, "model": model, "choices": choices, "usage": usage(response)]
    }

    /// The streamed reply of a caption that was not streamed as it was generated (beam search, or
    /// several choices): per choice a role chunk, its whole content in one chunk and a finish chunk;
    /// with `includeUsage`, a last chunk with the usage and no choices.
    static func chunks(_ response: CaptionResponse, id: String, created: Int, model: String, stop: [String] = [],
                       includeUsage: Bool = false) -> [[String: Any]] {
        var chunks: [[String: Any]] = []
        for (index, candidate) in response.candidates.enumerated() {
            let (text, finish) = content(candidate, stop: stop)
            chunks.append(chunk(id: id, created: created, model: model, index: index, delta: ["role": "assistant", "content": ""]))
            chunks.append(chunk(id: id, created: created, model: model, index: index, delta: ["content": text]))
            chunks.append(chunk(id: id, created: created, model: model, index: index, delta: [:], finishReason: finish))
        }
        if includeUsage { chunks.append(usageChunk(response, id: id, created: created, model: model)) }
        return chunks
    }

    /// `stream_options.include_usage`'s last chunk: no choices, the usage.
    static func usageChunk(_ response: CaptionResponse, id: String, created: Int, model: String) -> [String: Any] {
        ["id": id, "object": "chat.completion.chunk", "created": created, "model": model, "choices": [[String: Any]](),
         "usage": usage(response)]
    }
    /// One `chat.completion.chunk` event: a delta of choice `index`, or its finish (`finishReason`).
    static func chunk(id: String, created: Int, model: String, index: Int, delta: [String: Any],
                      finishReason: String? = nil) -> [String: Any] {
        ["id": id, "object": "chat.completion.chunk", "created": created, "model": model,
         "choices": [["index": index, "delta": delta, "finish_reason": finishReason.map { $0 as Any } ?? NSNull()]]]
    }

    static func finishReason(_ reason: CaptionResponse.FinishReason) -> String {
        reason == .length ? "length" : "stop"
    }
}
