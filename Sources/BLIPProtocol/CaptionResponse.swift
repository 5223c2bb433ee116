import BlipProtoC

/// `/blip.v1.Captioner/Caption`'s response: the captions, best first, and where the time went.
public struct CaptionResponse: Sendable, Hashable {
    /// Why a candidate's generation ended.
    public enum FinishReason: UInt32, Sendable, Hashable, CaseIterable {
        /// Not reported (a server older than this field).
        case unspecified = 0
        /// It generated `[SEP]`.
        case eos = 1
        /// It reached the length limit (`max_new_tokens`, `max_length` or the model's positions).
        case length = 2
    }

    /// One generated caption.
    public struct Candidate: Sendable, Hashable {
        /// The caption, prompt words included, special tokens removed.
        public var text: String
        /// The whole sequence: `[DEC]`, the prompt's tokens, the new tokens, a final `[SEP]` if any.
        public var tokenIDs: [UInt32]
        /// Beam search: sum of the generated tokens' log-probabilities / generated^lengthPenalty.
        /// Greedy and sampling: the mean log-probability of the generated tokens.
        public var score: Double
        public var finishReason: FinishReason
        /// Tokens generated after `[DEC]` and the prompt, the final `[SEP]` included (0: not reported).
        public var generatedTokens: UInt32

        public init(text: String = "", tokenIDs: [UInt32] = [], score: Double = 0, finishReason: FinishReason = .unspecified,
                    generatedTokens: UInt32 = 0) {
            self.text = text
            self.tokenIDs = tokenIDs
            self.score = score
            self.finishReason = finishReason
            self.generatedTokens = generatedTokens
        }
    }

    /// The captions of one prompt of a request with `prompts`.
    public struct PromptResult: Sendable, Hashable {
        /// The prompt as requested (`""` for the unconditional caption).
        public var prompt: String
        /// `numReturnSequences` captions, best first.
        public var candidates: [Candidate]

        public init(prompt: String = "", candidates: [Candidate] = []) {
            self.prompt = prompt
            self.candidates = candidates
        }
    }

    /// Wall-clock microseconds spent on each stage of the call.
    public struct Timings: Sendable, Hashable {
        /// From reading the request to starting work on it.
        public var queueWaitMicroseconds: UInt64
        /// Image decoding, EXIF orientation, resize and normalization.
        public var imageDecodeMicroseconds: UInt64
        /// The vision encoder.
        public var visionMicroseconds: UInt64
        /// The text decoder: every generation step.
        public var textMicroseconds: UInt64
        /// The image's features came from the feature cache (no decode, resize or encode ran).
        public var featureCacheHit: Bool

        public init(
            queueWaitMicroseconds: UInt64 = 0, imageDecodeMicroseconds: UInt64 = 0,
            visionMicroseconds: UInt64 = 0, textMicroseconds: UInt64 = 0, featureCacheHit: Bool = false
        ) {
            self.queueWaitMicroseconds = queueWaitMicroseconds
            self.imageDecodeMicroseconds = imageDecodeMicroseconds
            self.visionMicroseconds = visionMicroseconds
            self.textMicroseconds = textMicroseconds
            self.featureCacheHit = featureCacheHit
        }
    }

    /// `numReturnSequences` captions, best first; empty when the request used `prompts`.
    public var candidates: [Candidate]
    /// Which model wrote them, e.g. `"Salesforce/blip-image-captioning-large"`.
    public var modelID: String
    public var timings: Timings
    /// One per requested prompt, in order, when the request used `prompts`; empty otherwise.
    public var results: [PromptResult]
    /// The checkpoint's version (`InfoResponse.modelRevision`).
    public var modelRevision: String

    public init(candidates: [Candidate] = [], modelID: String = "", timings: Timings = Timings(),
                results: [PromptResult] = [], modelRevision: String = "") {
        self.candidates = candidates
        self.modelID = modelID
        self.timings = timings
        self.results = results
        self.modelRevision = modelRevision
    }

    /// Every prompt's captions in request order, whichever form the request used: ``results``, or
    /// one result holding ``candidates`` under `prompt`.
    public func promptResults(prompt: String?) -> [PromptResult] {
        results.isEmpty ? [PromptResult(prompt: prompt ?? "", candidates: candidates)] : results
    }
}

extension CaptionResponse: WireMessage {
    public static let messageName = "CaptionResponse"

    public init(decoding bytes: [UInt8]) throws(MessageDecodingError) {
        self = try ProtobufC.decode(
            bytes, descriptor: blip__v1__caption_response__descriptor,
            unpack: { blip__v1__caption_response__unpack(nil, $0, $1) },
            free: { blip__v1__caption_response__free_unpacked($0, nil) },
            read: { (c: borrowing Blip__V1__CaptionResponse) throws(MessageDecodingError) in
                try CaptionResponse(c)
            }
        )
    }

    public func encoded() -> [UInt8] {
        CArena.with { arena in
            var c = Blip__V1__CaptionResponse()
            blip__v1__caption_response__init(&c)
            let cCandidates = Self.cCandidates(candidates, in: arena)
            c.n_candidates = cCandidates.count
            c.candidates = arena.array(cCandidates)
            c.model_id = arena.optionalCString(modelID.isEmpty ? nil : modelID)
            c.model_revision = arena.optionalCString(modelRevision.isEmpty ? nil : modelRevision)
            if timings != Timings() {
                var cTimings = Blip__V1__Timings()
                blip__v1__timings__init(&cTimings)
                cTimings.has_queue_wait_us = 1
                cTimings.queue_wait_us = timings.queueWaitMicroseconds
                cTimings.has_image_decode_us = 1
                cTimings.image_decode_us = timings.imageDecodeMicroseconds
                cTimings.has_vision_us = 1
                cTimings.vision_us = timings.visionMicroseconds
                cTimings.has_text_us = 1
                cTimings.text_us = timings.textMicroseconds
                if timings.featureCacheHit { cTimings.has_feature_cache_hit = 1; cTimings.feature_cache_hit = 1 }
                c.timings = arena.store(cTimings)
            }
            let cResults = results.map { result in
                var cResult = Blip__V1__PromptResult()
                blip__v1__prompt_result__init(&cResult)
                cResult.prompt = arena.cString(result.prompt)
                let candidates = Self.cCandidates(result.candidates, in: arena)
                cResult.n_candidates = candidates.count
                cResult.candidates = arena.array(candidates)
                return Optional(arena.store(cResult))
            }
            c.n_results = cResults.count
            c.results = arena.array(cResults)
            return ProtobufC.encode(
                c,
                packedSize: { blip__v1__caption_response__get_packed_size($0) },
                pack: { blip__v1__caption_response__pack($0, $1) }
            )
        }
    }

    private static func cCandidates(_ candidates: [Candidate], in arena: CArena) -> [UnsafeMutablePointer<Blip__V1__Candidate>?] {
        candidates.map { candidate in
            var cCandidate = Blip__V1__Candidate()
            blip__v1__candidate__init(&cCandidate)
            cCandidate.text = arena.optionalCString(candidate.text.isEmpty ? nil : candidate.text)
            cCandidate.n_token_ids = candidate.tokenIDs.count
            cCandidate.token_ids = arena.array(candidate.tokenIDs)
            if candidate.score != 0 { cCandidate.has_score = 1; cCandidate.score = candidate.score }
            if candidate.generatedTokens != 0 { cCandidate.has_generated_tokens = 1; cCandidate.generated_tokens = candidate.generatedTokens }
            if candidate.finishReason != .unspecified {
                cCandidate.has_finish_reason = 1
                cCandidate.finish_reason = Blip__V1__FinishReason(rawValue: candidate.finishReason.rawValue)
            }
            return Optional(arena.store(cCandidate))
        }
    }

    private static func candidates(_ base: UnsafeMutablePointer<UnsafeMutablePointer<Blip__V1__Candidate>?>?,
                                   count: Int) throws(MessageDecodingError) -> [Candidate] {
        var candidates: [Candidate] = []
        candidates.reserveCapacity(count)
        for i in 0..<count {
            guard let candidate = base?[i]?.pointee else { continue }
            // A reason this client does not know reads as unspecified.
            let reason = candidate.has_finish_reason != 0 ? FinishReason(rawValue: candidate.finish_reason.rawValue) : nil
            candidates.append(Candidate(
                text: try ProtobufC.string(candidate.text, message: "Candidate", field: "text"),
                tokenIDs: ProtobufC.array(candidate.token_ids, count: candidate.n_token_ids),
                score: candidate.score,
                finishReason: reason ?? .unspecified,
                generatedTokens: candidate.generated_tokens
            ))
        }
        return candidates
    }

    private init(_ c: borrowing Blip__V1__CaptionResponse) throws(MessageDecodingError) {
        var timings = Timings()
        if let t = c.timings?.pointee {
            timings = Timings(
                queueWaitMicroseconds: t.queue_wait_us, imageDecodeMicroseconds: t.image_decode_us,
                visionMicroseconds: t.vision_us, textMicroseconds: t.text_us,
                featureCacheHit: t.has_feature_cache_hit != 0 && t.feature_cache_hit != 0
            )
        }
        var results: [PromptResult] = []
        for i in 0..<c.n_results {
            guard let result = c.results[i]?.pointee else { continue }
            results.append(PromptResult(
                prompt: try ProtobufC.string(result.prompt, message: "PromptResult", field: "prompt"),
                candidates: try Self.candidates(result.candidates, count: result.n_candidates)))
        }
        self.init(
            candidates: try Self.candidates(c.candidates, count: c.n_candidates),
            modelID: try ProtobufC.string(c.model_id, message: Self.messageName, field: "model_id"),
            timings: timings,
            results: results,
            modelRevision: try ProtobufC.string(c.model_revision, message: Self.messageName, field: "model_revision")
        )
    }
}
