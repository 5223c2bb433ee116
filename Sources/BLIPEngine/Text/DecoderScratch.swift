/// The activations of one decoder step, for up to `capacityRows` rows stacked: the rows of one
/// session, or of several sessions decoded together (``DecoderStep``). Sized once; reused every step.
final class DecoderScratch: @unchecked Sendable {
    // @unchecked: used by one step at a time (its session, or the batcher's leader).
    let capacityRows: Int
    /// Longest attention span a row may have: max(sequence capacity, image tokens).
    let capacitySpan: Int
    private let buffers: [FloatBuffer]
    let hidden: UnsafeMutablePointer<Float>   // (rows, hidden): the residual stream
    let query: UnsafeMutablePointer<Float>    // (rows, hidden)
    let context: UnsafeMutablePointer<Float>  // (rows, hidden)
    let newKeys: UnsafeMutablePointer<Float>  // (rows, hidden): this position's self-attention keys
    let newValues: UnsafeMutablePointer<Float> // (rows, hidden)
    let scores: UnsafeMutablePointer<Float>   // (rows, heads, capacitySpan)
    let ffn: UnsafeMutablePointer<Float>      // (rows, intermediate)
    let logits: UnsafeMutablePointer<Float>   // (rows, vocab)

    init(config c: BlipTextConfig, rows: Int, span: Int) {
        capacityRows = rows
        capacitySpan = span
        let h = c.hiddenSize
        let sizes = [rows * h, rows * h, rows * h, rows * h, rows * h,
                     rows * c.numAttentionHeads * span, rows * c.intermediateSize, rows * c.vocabSize]
        buffers = sizes.map { FloatBuffer(count: $0) }
        (hidden, query, context, newKeys, newValues, scores, ffn, logits) =
            (buffers[0].pointer, buffers[1].pointer, buffers[2].pointer, buffers[3].pointer,
             buffers[4].pointer, buffers[5].pointer, buffers[6].pointer, buffers[7].pointer)
    }
}

/// One decoder step over the rows of one or more sessions: session `parts[i]` owns rows
/// `firstRow ..< firstRow + session.rows` of `scratch`. The products (every weight) run once over
/// all rows; attention runs per session against its own caches.
struct DecoderStep {
    struct Part {
        let session: DecoderSession
        let firstRow: Int
        let tokens: [Int32]
    }
    let parts: [Part]
    let rows: Int
    let scratch: DecoderScratch
}
