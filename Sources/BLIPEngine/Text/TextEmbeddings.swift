/// `text_decoder.bert.embeddings`: word + absolute position embeddings, then LayerNorm.
/// (BLIP's decoder has no token-type embeddings.)
struct TextEmbeddings: @unchecked Sendable {
    let wordEmbeddings: UnsafePointer<Float>      // (vocab, hidden); also the tied LM-head weight
    let positionEmbeddings: UnsafePointer<Float>  // (maxPositions, hidden)
    let layerNorm: LayerNorm
    let hidden: Int

    init(_ w: WeightStore, prefix: String, config: BlipTextConfig) throws(ModelError) {
        let h = config.hiddenSize
        hidden = h
        wordEmbeddings = try w.tensor(prefix + ".word_embeddings.weight", shape: [config.vocabSize, h])
        positionEmbeddings = try w.tensor(prefix + ".position_embeddings.weight", shape: [config.maxPositionEmbeddings, h])
        layerNorm = try w.layerNorm(prefix + ".LayerNorm", width: h, eps: config.layerNormEps)
    }

    /// One token per row, all rows at `position`; out: (rows, hidden).
    func callAsFunction(_ tokens: [Int32], position: Int, into out: UnsafeMutablePointer<Float>) {
        for (r, token) in tokens.enumerated() {
            let row = out + r * hidden
            row.update(from: wordEmbeddings + Int(token) * hidden, count: hidden)
            addInPlace(row, positionEmbeddings + position * hidden, count: hidden)
        }
        layerNorm(out, rows: tokens.count, into: out)
    }
}
