/// One decoder step over several sessions at once, as the engine loop runs it: the sessions are
/// taken in order in chunks of at most `Linear.skinnyRows` rows, and each chunk's products read
/// every weight once for all its rows. Up to that many rows the weight-streaming kernel computes
/// every row exactly as for the row alone, so each session's logits are bit-identical to stepping
/// it alone; beyond it a product would switch to sgemm, whose results differ in the last bits.
///
/// Holds the shared scratch a chunk of several sessions steps in (grown to the largest chunk
/// seen); a session stepped alone uses its own. Used by one thread at a time.
public final class BatchedStep {
    private let decoder: TextDecoder
    private var shared: DecoderScratch?

    public init(decoder: TextDecoder) { self.decoder = decoder }

    /// Steps every session by its tokens, checked first: what concurrent captions get, for
    /// measuring and testing it. Returns the chunks that held more than one session.
    /// - Precondition: the sessions are distinct.
    @discardableResult
    public func step(_ sessions: [DecoderSession], tokens: [[Int32]]) throws(DecoderSessionError) -> Int {
        precondition(sessions.count == tokens.count && Set(sessions.map(ObjectIdentifier.init)).count == sessions.count)
        for (s, t) in zip(sessions, tokens) { try s.checkStep(t) }
        return run(sessions, tokens: tokens)
    }

    /// How many of `rows`, from the first, one chunk takes: as many as fit `Linear.skinnyRows`
    /// rows together, at least one.
    static func chunkLength(_ rows: some Collection<Int>) -> Int {
        var total = 0, count = 0
        for r in rows {
            if count > 0 && total + r > Linear.skinnyRows { break }
            total += r
            count += 1
        }
        return count
    }

    /// Steps every session by its tokens (each session's logits land in the session, as after its
    /// own `step`). Returns the chunks that held more than one session.
    /// - Precondition: every `tokens[i]` passed `sessions[i].checkStep`.
    @discardableResult
    func run(_ sessions: [DecoderSession], tokens: [[Int32]]) -> Int {
        var start = 0, batched = 0
        while start < sessions.count {
            let count = Self.chunkLength(sessions[start...].map(\.rows))
            runChunk(sessions[start..<start + count], tokens[start..<start + count])
            if count > 1 { batched += 1 }
            start += count
        }
        return batched
    }

    private func runChunk(_ sessions: ArraySlice<DecoderSession>, _ tokens: ArraySlice<[Int32]>) {
        if sessions.count == 1, let only = sessions.first, let t = tokens.first {
            decoder.forward(DecoderStep(parts: [.init(session: only, firstRow: 0, tokens: t)],
                                        rows: only.rows, scratch: only.scratch))
            return
        }
        var parts: [DecoderStep.Part] = []
        parts.reserveCapacity(sessions.count)
        var rows = 0, span = 0
        for (session, t) in zip(sessions, tokens) {
            parts.append(.init(session: session, firstRow: rows, tokens: t))
            rows += session.rows
            span = max(span, session.span)
        }
        let scratch: DecoderScratch
        if let shared, shared.capacityRows >= rows, shared.capacitySpan >= span {
            scratch = shared
        } else {
            scratch = DecoderScratch(config: decoder.config, rows: max(rows, shared?.capacityRows ?? 0),
                                     span: max(span, shared?.capacitySpan ?? 0))
            shared = scratch
        }
        decoder.forward(DecoderStep(parts: parts, rows: rows, scratch: scratch))
        let vocab = decoder.config.vocabSize
        for part in parts {
            part.session.scratch.logits.update(from: scratch.logits + part.firstRow * vocab, count: part.session.rows * vocab)
        }
    }
}
