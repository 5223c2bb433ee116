import BlipProtoC

/// `/blip.v1.Captioner/Caption`'s response: the captions, best first, and where the time went.
public struct CaptionResponse: Sendable, Hashable {
    /// One generated caption.
    public struct Candidate: Sendable, Hashable {
        /// The caption, prompt words included, special tokens removed.
        public var text: String
        /// The whole sequence: `[DEC]`, the prompt's tokens, the new tokens, a final `[SEP]` if any.
        public var tokenIDs: [UInt32]
        /// Beam search: sum of the generated tokens' log-probabilities / generated^lengthPenalty.
        /// Greedy and sampling: the sum of those log-probabilities.
        public var score: Double

        public init(text: String = "", tokenIDs: [UInt32] = [], score: Double = 0) {
            self.text = text
            self.tokenIDs = tokenIDs
            self.score = score
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

        public init(
            queueWaitMicroseconds: UInt64 = 0, imageDecodeMicroseconds: UInt64 = 0,
            visionMicroseconds: UInt64 = 0, textMicroseconds: UInt64 = 0
        ) {
            self.queueWaitMicroseconds = queueWaitMicroseconds
            self.imageDecodeMicroseconds = imageDecodeMicroseconds
            self.visionMicroseconds = visionMicroseconds
            self.textMicroseconds = textMicroseconds
        }
    }

    /// `numReturnSequences` captions, best first.
    public var candidates: [Candidate]
    /// Which model wrote them, e.g. `"Salesforce/blip-image-captioning-large"`.
    public var modelID: String
    public var timings: Timings

    public init(candidates: [Candidate] = [], modelID: String = "", timings: Timings = Timings()) {
        self.candidates = candidates
        self.modelID = modelID
        self.timings = timings
    }
}

extension CaptionResponse: WireMessage {
    public static let messageName = "CaptionResponse"

    public init(decoding bytes: [UInt8]) throws(MessageDecodingError) {
        self = try ProtobufC.decode(
            bytes, as: Self.messageName,
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
            let cCandidates = candidates.map { candidate in
                var cCandidate = Blip__V1__Candidate()
                blip__v1__candidate__init(&cCandidate)
                cCandidate.text = arena.optionalCString(candidate.text.isEmpty ? nil : candidate.text)
                cCandidate.n_token_ids = candidate.tokenIDs.count
                cCandidate.token_ids = arena.array(candidate.tokenIDs)
                if candidate.score != 0 { cCandidate.has_score = 1; cCandidate.score = candidate.score }
                return Optional(arena.store(cCandidate))
            }
            c.n_candidates = cCandidates.count
            c.candidates = arena.array(cCandidates)
            c.model_id = arena.optionalCString(modelID.isEmpty ? nil : modelID)
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
                c.timings = arena.store(cTimings)
            }
            return ProtobufC.encode(
                c,
                packedSize: { blip__v1__caption_response__get_packed_size($0) },
                pack: { blip__v1__caption_response__pack($0, $1) }
            )
        }
    }

    private init(_ c: borrowing Blip__V1__CaptionResponse) throws(MessageDecodingError) {
        var candidates: [Candidate] = []
        candidates.reserveCapacity(c.n_candidates)
        for i in 0..<c.n_candidates {
            guard let candidate = c.candidates[i]?.pointee else { continue }
            candidates.append(Candidate(
                text: try ProtobufC.string(candidate.text, message: "Candidate", field: "text"),
                tokenIDs: ProtobufC.array(candidate.token_ids, count: candidate.n_token_ids),
                score: candidate.score
            ))
        }
        var timings = Timings()
        if let t = c.timings?.pointee {
            timings = Timings(
                queueWaitMicroseconds: t.queue_wait_us, imageDecodeMicroseconds: t.image_decode_us,
                visionMicroseconds: t.vision_us, textMicroseconds: t.text_us
            )
        }
        self.init(
            candidates: candidates,
            modelID: try ProtobufC.string(c.model_id, message: Self.messageName, field: "model_id"),
            timings: timings
        )
    }
}
