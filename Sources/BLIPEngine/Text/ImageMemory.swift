/// What the caption decoder cross-attends to for one image: every layer's keys and values of the
/// vision features, projected once per image and shared by every session (prompt, beam) that
/// decodes a caption of it. Immutable once built.
public final class ImageMemory: @unchecked Sendable {
    // @unchecked: written once in init, read-only afterwards.
    let imageTokens: Int
    private let hiddenWidth: Int
    private let layerCount: Int
    private let cross: FloatBuffer  // (2, layers, heads, imageTokens, headDim)

    /// - Parameters:
    ///   - features: the vision features, (imageTokens, encoderHidden); read once here.
    ///   - imageTokens: rows of `features` to attend to.
    init(decoder: TextDecoder, features: UnsafePointer<Float>, imageTokens: Int) {
        let c = decoder.config
        self.imageTokens = imageTokens
        hiddenWidth = c.hiddenSize
        layerCount = c.numHiddenLayers
        cross = FloatBuffer(count: 2 * layerCount * imageTokens * hiddenWidth, zeroed: false)
        let projected = FloatBuffer(count: imageTokens * hiddenWidth, zeroed: false)
        // The oneDNN products' buffers (bf16, int8), when the projections have them.
        let matmulScratch = decoder.layers.first?.crossAttention.key.dense.map {
            MatmulScratch(rows: imageTokens, maxInputs: $0.inFeatures, maxOutputs: $0.outFeatures)
        }
        for (i, layer) in decoder.layers.enumerated() {
            layer.crossAttention.project(features: features, imageTokens: imageTokens, scratch: projected.pointer,
                                         matmulScratch: matmulScratch,
                                         keys: keys(layer: i), values: values(layer: i))
        }
    }

    /// Layer `layer`'s keys, (heads, headDim, imageTokens).
    func keys(layer: Int) -> UnsafeMutablePointer<Float> { cross.pointer + layer * imageTokens * hiddenWidth }
    /// Layer `layer`'s values, (heads, imageTokens, headDim).
    func values(layer: Int) -> UnsafeMutablePointer<Float> { keys(layer: layer + layerCount) }
}
