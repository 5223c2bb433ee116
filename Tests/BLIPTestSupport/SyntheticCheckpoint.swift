import Foundation

/// Writes a small BLIP checkpoint with random weights entirely from Swift, so loader tests can
/// corrupt it in every way, and tests that need a model of a given size can make one, without
/// depending on Python.
public struct SyntheticCheckpoint {
    public var visionHidden = 16, visionLayers = 1, visionHeads = 2, visionMLP = 32, imageSize = 32, patchSize = 16
    public var textHidden = 8, textLayers = 1, textHeads = 2, textMLP = 16, vocab = 40, maxPositions = 16

    public init() {}

    public var configJSON: String {
        """
        {"architectures": ["BlipForConditionalGeneration"], "model_type": "blip",
         "text_config": {"hidden_size": \(textHidden), "num_hidden_layers": \(textLayers), "num_attention_heads": \(textHeads),
                         "intermediate_size": \(textMLP), "vocab_size": \(vocab), "max_position_embeddings": \(maxPositions),
                         "bos_token_id": 30, "sep_token_id": 3},
         "vision_config": {"hidden_size": \(visionHidden), "num_hidden_layers": \(visionLayers), "num_attention_heads": \(visionHeads),
                           "intermediate_size": \(visionMLP), "image_size": \(imageSize), "patch_size": \(patchSize)}}
        """
    }

    /// Every tensor name with its shape, as transformers 5 saves them (tied decoder weight omitted).
    public var tensors: [(String, [Int])] {
        let vh = visionHidden, th = textHidden, tokens = 1 + (imageSize / patchSize) * (imageSize / patchSize)
        var t: [(String, [Int])] = [
            ("vision_model.embeddings.class_embedding", [1, 1, vh]),
            ("vision_model.embeddings.position_embedding", [1, tokens, vh]),
            ("vision_model.embeddings.patch_embedding.weight", [vh, 3, patchSize, patchSize]),
            ("vision_model.embeddings.patch_embedding.bias", [vh]),
            ("vision_model.post_layernorm.weight", [vh]), ("vision_model.post_layernorm.bias", [vh]),
            ("text_decoder.bert.embeddings.word_embeddings.weight", [vocab, th]),
            ("text_decoder.bert.embeddings.position_embeddings.weight", [maxPositions, th]),
            ("text_decoder.bert.embeddings.LayerNorm.weight", [th]), ("text_decoder.bert.embeddings.LayerNorm.bias", [th]),
            ("text_decoder.cls.predictions.bias", [vocab]),
            ("text_decoder.cls.predictions.transform.dense.weight", [th, th]), ("text_decoder.cls.predictions.transform.dense.bias", [th]),
            ("text_decoder.cls.predictions.transform.LayerNorm.weight", [th]), ("text_decoder.cls.predictions.transform.LayerNorm.bias", [th]),
        ]
        for i in 0..<visionLayers {
            let p = "vision_model.encoder.layers.\(i)."
            t += [(p + "self_attn.qkv.weight", [3 * vh, vh]), (p + "self_attn.qkv.bias", [3 * vh]),
                  (p + "self_attn.projection.weight", [vh, vh]), (p + "self_attn.projection.bias", [vh]),
                  (p + "layer_norm1.weight", [vh]), (p + "layer_norm1.bias", [vh]),
                  (p + "mlp.fc1.weight", [visionMLP, vh]), (p + "mlp.fc1.bias", [visionMLP]),
                  (p + "mlp.fc2.weight", [vh, visionMLP]), (p + "mlp.fc2.bias", [vh]),
                  (p + "layer_norm2.weight", [vh]), (p + "layer_norm2.bias", [vh])]
        }
        for i in 0..<textLayers {
            let p = "text_decoder.bert.encoder.layer.\(i)."
            for a in ["attention", "crossattention"] {
                let kv = a == "attention" ? th : vh
                t += [(p + a + ".self.query.weight", [th, th]), (p + a + ".self.query.bias", [th]),
                      (p + a + ".self.key.weight", [th, kv]), (p + a + ".self.key.bias", [th]),
                      (p + a + ".self.value.weight", [th, kv]), (p + a + ".self.value.bias", [th]),
                      (p + a + ".output.dense.weight", [th, th]), (p + a + ".output.dense.bias", [th]),
                      (p + a + ".output.LayerNorm.weight", [th]), (p + a + ".output.LayerNorm.bias", [th])]
            }
            t += [(p + "intermediate.dense.weight", [textMLP, th]), (p + "intermediate.dense.bias", [textMLP]),
                  (p + "output.dense.weight", [th, textMLP]), (p + "output.dense.bias", [th]),
                  (p + "output.LayerNorm.weight", [th]), (p + "output.LayerNorm.bias", [th])]
        }
        return t
    }

    /// Writes config.json, vocab.txt and model.safetensors into a new temporary folder.
    /// `edit` may change the tensor list (drop, rename, reshape) before writing.
    public func write(edit: (inout [(String, [Int])]) -> Void = { _ in }) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("blip-synthetic-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try configJSON.write(to: dir.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
        try (0..<vocab).map { "tok\($0)" }.joined(separator: "\n").write(to: dir.appendingPathComponent("vocab.txt"), atomically: true, encoding: .utf8)
        var list = tensors
        edit(&list)
        try Self.safetensors(list).write(to: dir.appendingPathComponent("model.safetensors"))
        return dir
    }

    /// A float32 safetensors file with deterministic pseudo-random contents.
    public static func safetensors(_ list: [(String, [Int])]) -> Data {
        var header: [String] = []
        var offset = 0
        for (name, shape) in list {
            let bytes = shape.reduce(1, *) * 4
            header.append("\"\(name)\": {\"dtype\": \"F32\", \"shape\": \(shape), \"data_offsets\": [\(offset), \(offset + bytes)]}")
            offset += bytes
        }
        var json = Array(("{" + header.joined(separator: ", ") + "}").utf8)
        while (8 + json.count) % 8 != 0 { json.append(0x20) }
        var data = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(contentsOf: json)
        var state: UInt32 = 12345
        var floats = [Float](repeating: 0, count: offset / 4)
        for i in floats.indices {
            state = state &* 1664525 &+ 1013904223
            floats[i] = Float(Int32(bitPattern: state >> 8) - (1 << 23)) / Float(1 << 23) * 0.5
        }
        floats.withUnsafeBytes { data.append(contentsOf: $0) }
        return data
    }
}
