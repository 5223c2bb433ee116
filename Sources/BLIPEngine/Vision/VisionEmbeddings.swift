import COpenBLAS

/// `vision_model.embeddings`: a patch_size×patch_size stride-patch_size convolution (run as one GEMM
/// over unfolded patches), a class token in front, and learned position embeddings added.
struct VisionEmbeddings: @unchecked Sendable {
    // @unchecked: points into immutable weight storage that the model keeps alive.
    let config: BlipVisionConfig
    let patchProjection: Linear           // (hidden, 3·patch·patch): the conv kernel flattened as (c, ky, kx)
    let classEmbedding: UnsafePointer<Float>    // (hidden)
    let positionEmbedding: UnsafePointer<Float> // (tokens, hidden)

    init(_ w: WeightStore, prefix: String, config: BlipVisionConfig) throws(ModelError) {
        self.config = config
        let h = config.hiddenSize, p = config.patchSize
        patchProjection = Linear(
            weight: try w.tensor(prefix + ".patch_embedding.weight", shape: [h, 3, p, p]),
            bias: try w.tensor(prefix + ".patch_embedding.bias", shape: [h]),
            inFeatures: 3 * p * p, outFeatures: h)
        classEmbedding = try w.tensor(prefix + ".class_embedding", shape: [h])
        positionEmbedding = try w.tensor(prefix + ".position_embedding", shape: [config.tokenCount, h])
    }

    /// pixels: (3, S, S) normalised CHW; patches: scratch (patchCount, 3·p·p); out: (tokens, hidden).
    func callAsFunction(pixels: UnsafePointer<Float>, patches: UnsafeMutablePointer<Float>,
                        into out: UnsafeMutablePointer<Float>) {
        let s = config.imageSize, p = config.patchSize, side = config.patchesPerSide, h = config.hiddenSize
        // im2col: row (py·side + px) holds the patch's pixels in the kernel's (c, ky, kx) order.
        let k = 3 * p * p
        for py in 0..<side {
            for px in 0..<side {
                var dst = patches + (py * side + px) * k
                for c in 0..<3 {
                    for ky in 0..<p {
                        let src = pixels + c * s * s + (py * p + ky) * s + px * p
                        dst.update(from: src, count: p)
                        dst += p
                    }
                }
            }
        }
        // Patch tokens go to rows 1…; row 0 is the class token.
        patchProjection(patches, rows: side * side, into: out + h)
        out.update(from: classEmbedding, count: h)
        addInPlace(out, positionEmbedding, count: config.tokenCount * h)
    }
}
