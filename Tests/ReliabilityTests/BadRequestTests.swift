import BLIPProtocol
import BLIPTestSupport
import Foundation
import Testing

extension ReliabilitySuite {
    /// Every decoding option outside its valid range (docs/protocol.md §5.1) on a valid image.
    /// INVALID_ARGUMENT naming the option; RESOURCE_EXHAUSTED where the value is valid but above a
    /// server limit (§5.1 last paragraph, §6).
    @Test func decodingOptionsOutOfRange() throws {
        let h = try Harness()
        do {
        let c = try h.connect()
        let image = CaptionRequest.Image(data: try Paths.image("pixel_1x1.png"))
        func run(_ name: String, _ options: DecodingOptions, prompt: String? = nil, _ code: StatusCode,
                 _ mention: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let response = try c.caption(CaptionRequest(image: image, prompt: prompt, options: options))
            h.check(name, response, code: code, messageContains: mention, sourceLocation: sourceLocation)
        }
        let big = UInt32.max
        let sampling = DecodingOptions(doSample: true)
        func sample(_ change: (inout DecodingOptions) -> Void) -> DecodingOptions {
            var o = sampling
            change(&o)
            return o
        }

        try run("num_beams 0", .init(numBeams: 0), .invalidArgument, "num_beams")
        try run("max_new_tokens 0", .init(maxNewTokens: 0), .invalidArgument, "max_new_tokens")
        try run("max_length 0", .init(maxLength: 0), .invalidArgument, "max_length")
        try run("max_length 1 (no room for a token)", .init(maxLength: 1), .invalidArgument, "max_length")
        try run("num_return_sequences 0", .init(numReturnSequences: 0), .invalidArgument, "num_return_sequences")
        try run("num_return_sequences 4 > num_beams 3", .init(numBeams: 3, numReturnSequences: 4), .invalidArgument, "num_return_sequences")
        try run("num_return_sequences 2 with greedy", .init(numBeams: 1, numReturnSequences: 2), .invalidArgument, "num_return_sequences")
        for (label, value) in [("NaN", Double.nan), ("-1", -1), ("0", 0), ("+inf", .infinity), ("-0", -0.0), ("1e300 (inf as Float)", 1e300)] {
            try run("temperature \(label) (sampling)", sample { $0.temperature = value }, .invalidArgument, "temperature")
        }
        try run("temperature NaN (greedy: still validated)", .init(numBeams: 1, temperature: .nan), .invalidArgument, "temperature")
        for (label, value) in [("0", 0.0), ("1.5", 1.5), ("NaN", .nan), ("-0.1", -0.1), ("1e-50 (0 as Float)", 1e-50)] {
            try run("top_p \(label)", sample { $0.topP = value }, .invalidArgument, "top_p")
        }
        for (label, value) in [("0", 0.0), ("-1", -1), ("NaN", .nan), ("+inf", .infinity)] {
            try run("repetition_penalty \(label)", .init(repetitionPenalty: value), .invalidArgument, "repetition_penalty")
        }
        for (label, value) in [("NaN", Double.nan), ("+inf", .infinity), ("-inf", -.infinity)] {
            try run("length_penalty \(label)", .init(lengthPenalty: value), .invalidArgument, "length_penalty")
        }
        try run("no_repeat_ngram_size 4294967295", .init(noRepeatNgramSize: big), .invalidArgument, "no_repeat_ngram_size")
        try run("prompt of 600 characters", .init(), prompt: String(repeating: "a", count: 600), .invalidArgument, "prompt")
        try run("65 bad_words", .init(badWords: (0..<65).map { "w\($0)" }), .invalidArgument, "bad_words")
        try run("bad word of 600 characters", .init(badWords: [String(repeating: "b", count: 600)]), .invalidArgument, "bad_words")

        // Values inside the valid range but above the server's limits: RESOURCE_EXHAUSTED (§6).
        // The daemon answers INVALID_ARGUMENT for these (ParameterError always maps to it).
        let overLimit: [(String, DecodingOptions, String)] = [
            ("num_beams 9 (> max_beams 8)", .init(numBeams: 9), "num_beams"),
            ("num_beams 4294967295", .init(numBeams: big), "num_beams"),
            ("max_new_tokens 64 (> max_tokens - 1)", .init(maxNewTokens: 64), "max_new_tokens"),
            ("max_new_tokens 4294967295", .init(maxNewTokens: big), "max_new_tokens"),
            ("max_length 4294967295", .init(maxLength: big), "max_length"),
            ("num_return_sequences 9 when sampling (> max_beams)", sample { $0.numReturnSequences = 9 }, "num_return_sequences"),
        ]
        for (name, options, mention) in overLimit {
            let response = try c.caption(CaptionRequest(image: image, options: options))
            h.check(name, response, code: response.statusCode, messageContains: mention)
            // protocol.md §6: parameters beyond the daemon's limits are invalid arguments (the message
            // names the allowed range); RESOURCE_EXHAUSTED is for sizes (frames, images, queue).
            #expect(response.statusCode == .invalidArgument, "\(name): \(response.statusMessage)")
        }
        // min above max: accepted, as transformers accepts it; the maximum wins (protocol.md §5.1).
        do {
            let response = try c.caption(CaptionRequest(image: image, options: .init(maxNewTokens: 5, minNewTokens: 10)))
            h.check("min_new_tokens 10 > max_new_tokens 5", response, code: response.statusCode)
            #expect(response.statusCode == .ok, "\(response.statusMessage)")
        }
        do {
            let response = try c.caption(CaptionRequest(image: image, options: .init(maxLength: 20, minLength: 30)))
            h.check("min_length 30 > max_length 20", response, code: response.statusCode)
            #expect(response.statusCode == .ok, "\(response.statusMessage)")
        }
        // protocol.md §5.1: an empty bad_words entry is refused (it would ban nothing).
        do {
            let response = try c.caption(CaptionRequest(image: image, options: .init(badWords: ["", "dog"])))
            h.check("bad_words with an empty entry", response, code: response.statusCode)
            #expect(response.statusCode == .invalidArgument && response.statusMessage.contains("bad_words"), "\(response.statusMessage)")
        }

        // Extremes that are valid must work and not blow up the daemon.
        try run("top_k 4294967295 (sampling)", sample { $0.topK = big; $0.seed = 1 }, .ok, "")
        try run("seed 2^64-1", sample { $0.seed = .max }, .ok, "")
        try run("max_new_tokens 63, 8 beams, min 63", .init(numBeams: 8, maxNewTokens: 63, minNewTokens: 63), .ok, "")
        try run("min_new_tokens 4294967295 alone", .init(minNewTokens: big), .invalidArgument, "min_new_tokens")
        try run("min_length 4294967295", .init(minLength: big), .invalidArgument, "min_length")
        try run("top_p 1e-7 (sampling)", sample { $0.topP = 1e-7; $0.seed = 2 }, .ok, "")
        try run("temperature 1e-30 (sampling)", sample { $0.temperature = 1e-30; $0.seed = 3 }, .ok, "")
        try run("temperature 1e30 (sampling)", sample { $0.temperature = 1e30; $0.seed = 4 }, .ok, "")
        try run("repetition_penalty 1e30", .init(repetitionPenalty: 1e30), .ok, "")
        try run("length_penalty -1e30", .init(lengthPenalty: -1e30), .ok, "")
        try run("prompt of 300 words (too many tokens)", .init(), prompt: String(repeating: "a ", count: 250),
                .invalidArgument, "prefix has 251 tokens")
        // protocol.md §2: a prompt "a\0b" on the wire (CaptionRequest.encoded() cannot write one:
        // protobuf-c writes C strings) is refused, not read as "a".
        do {
            let payload = CaptionRequest(image: image, options: .init(numBeams: 1, maxNewTokens: 2)).encoded() + [0x12, 0x03, 0x61, 0x00, 0x62]
            let response = try c.call(RPCMethod.caption.rawValue, payload: payload)
            h.check("prompt \"a\\0b\" (NUL inside)", response, code: .invalidArgument, messageContains: "CaptionRequest.prompt contains a NUL byte")
        }
        }
        h.finish("decoding options")
    }
}
