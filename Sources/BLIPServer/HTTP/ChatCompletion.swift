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

    /// Parses and maps the body: typed decoding (``ChatCompletionBody``), so a body costs a small
    /// multiple of its bytes — no tree of objects — and a field of the wrong type is named.
    /// - Throws: ``ChatCompletionError`` naming what is missing or unsupported.
    init(json body: [UInt8]) throws(ChatCompletionError) {
        let root: ChatCompletionBody
        do {
            root = try JSONDecoder().decode(ChatCompletionBody.self, from: Data(body))
        } catch let error as DecodingError {
            throw .invalid(Self.describe(error))
        } catch {
            throw .invalid("the body is not a JSON object")
        }
        model = root.model
        stream = root.stream ?? false
        if let unsupported = root.unsupported {
            throw .unsupported("\(unsupported) is not supported: this model writes one caption of one image")
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

        var options = DecodingOptions()
        if let n = root.n {
            guard n >= 1 else { throw .invalid("n must be at least 1") }
            options.numReturnSequences = UInt32(clamping: n)
            if n > 1 { options.numBeams = max(UInt32(clamping: n), DecodingOptions.documentedDefaults.numBeams ?? 3) }
        }
        if let maxTokens = root.maxCompletionTokens ?? root.maxTokens {
            guard maxTokens >= 1 else { throw .invalid("max_tokens must be at least 1") }
            options.maxNewTokens = UInt32(clamping: maxTokens)
        }
        if let temperature = root.temperature {
            if temperature > 0 {
                options.doSample = true
                options.temperature = temperature
                if root.n == nil { options.numBeams = 1 }
            } else {
                options.numBeams = 1
                options.doSample = false
            }
        }
        if let topP = root.topP { options.topP = topP }
        if let seed = root.seed { options.seed = UInt64(bitPattern: seed) }
        let prompt = texts.joined(separator: " ").trimmingCharacters(in: .whitespacesAndNewlines)
        caption = CaptionRequest(image: image, prompt: prompt.isEmpty ? nil : prompt, options: options)
    }

    /// "max_tokens must be an integer" for a field of the wrong type, and the like.
    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
            return keys.isEmpty ? "the body" : keys.joined(separator: ".").replacingOccurrences(of: ".[", with: "[").bounded(128)
        }
        switch error {
        case .typeMismatch(let type, let context), .valueNotFound(let type, let context):
            return "\(path(context)) must be \(type == String.self ? "a string" : type == Bool.self ? "true or false" : type == Double.self ? "a number" : type == Int.self || type == Int64.self ? "an integer" : "\(type)")"
        case .keyNotFound(let key, let context):
            return "\(path(context)) lacks \(key.stringValue.bounded(64))"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "the body is not JSON" : "\(path(context)) is not valid"
        @unknown default:
            return "the body is not a valid chat-completions request"
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

/// Why a chat-completions request is refused, as OpenAI reports it: a 400 with an error body.
enum ChatCompletionError: Error {
    case invalid(String)
    case unsupported(String)

    var message: String {
        switch self {
        case .invalid(let m), .unsupported(let m): m
        }
    }
}

/// The reply of `POST /v1/chat/completions`, and its streamed chunks.
enum ChatCompletionReply {
    /// The whole reply: one choice per candidate.
    static func body(_ response: CaptionResponse, id: String, created: Int, model: String) -> [String: Any] {
        let choices = response.candidates.enumerated().map { index, candidate -> [String: Any] in
            ["index": index, "message": ["role": "assistant", "content": candidate.text],
             "finish_reason": finishReason(candidate.finishReason), "logprobs": NSNull()]
        }
        let completion = response.candidates.reduce(0) { $0 + Int($1.generatedTokens) }
        let prompt = response.candidates.first.map { $0.tokenIDs.count - Int($0.generatedTokens) } ?? 0
        return ["id": id, "object": "chat.completion", "created": created, "model": model, "choices": choices,
                "usage": ["prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion]]
    }

    /// The streamed reply of a caption that was not streamed as it was generated (beam search, or
    /// several choices): per choice a role chunk, its whole content in one chunk and a finish chunk.
    static func chunks(_ response: CaptionResponse, id: String, created: Int, model: String) -> [[String: Any]] {
        var chunks: [[String: Any]] = []
        for (index, candidate) in response.candidates.enumerated() {
            chunks.append(chunk(id: id, created: created, model: model, index: index, delta: ["role": "assistant", "content": ""]))
            chunks.append(chunk(id: id, created: created, model: model, index: index, delta: ["content": candidate.text]))
            chunks.append(chunk(id: id, created: created, model: model, index: index, delta: [:],
                                finishReason: finishReason(candidate.finishReason)))
        }
        return chunks
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
