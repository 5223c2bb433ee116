/// `text_decoder.cls.predictions`: dense → GELU → LayerNorm → decoder (vocab, hidden) + bias.
/// The decoder weight is the word-embedding matrix when the checkpoint ties them and omits it.
struct LMHead: @unchecked Sendable {
    let transform: Linear  // (hidden, hidden)
    let layerNorm: LayerNorm
    let decoder: Linear    // (vocab, hidden)

    init(_ w: WeightStore, prefix: String, config: BlipTextConfig, tied: Bool,
         wordEmbeddings: UnsafePointer<Float>, precision: LayerPrecision) throws(ModelError) {
        let h = config.hiddenSize, v = config.vocabSize
        transform = try w.linear(prefix + ".transform.dense", in: h, out: h, steps: precision.steps)
        layerNorm = try w.layerNorm(prefix + ".transform.LayerNorm", width: h, eps: config.layerNormEps)
        let weightName = prefix + ".decoder.weight"
        let weight: UnsafePointer<Float>
        if w.contains(weightName) || !tied {
            weight = try w.tensor(weightName, shape: [v, h])
        } else {
            weight = wordEmbeddings
        }
        // transformers ties decoder.bias to predictions.bias; checkpoints hold one or both.
        var bias: UnsafePointer<Float>?
        for name in [prefix + ".decoder.bias", prefix + ".bias"] where w.contains(name) {
            let b = try w.tensor(name, shape: [v])
            if bias == nil { bias = b }
        }
        guard let bias else { throw .missingTensor(prefix + ".bias") }
        var decoder = Linear(weight: weight, bias: bias, inFeatures: h, outFeatures: v)
        // Not released: when tied, the same floats are the word embeddings, read by every step.
        w.stepCopy(of: &decoder, precision.steps, releasing: false)
        self.decoder = decoder
    }

    /// x: (rows, hidden) → logits (rows, vocab). `scratch` is (rows, hidden).
    func callAsFunction(_ x: UnsafePointer<Float>, rows: Int, scratch: UnsafeMutablePointer<Float>,
                        into logits: UnsafeMutablePointer<Float>) {
        transform(x, rows: rows, into: scratch, then: .gelu)
        layerNorm(scratch, rows: rows, into: scratch)
        decoder(scratch, rows: rows, into: logits)
    }
}
