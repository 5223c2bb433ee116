import Foundation

extension WordPieceTokenizer {
    /// The tokenizer of a model folder: `vocab.txt` (the hub layout), or the WordPiece vocabulary
    /// inside `tokenizer.json` (what transformers 5's `save_pretrained` writes).
    public init(folder: ModelFolder) throws {
        if FileManager.default.fileExists(atPath: folder.vocabulary.path) {
            try self.init(vocabularyFile: folder.vocabulary)
            return
        }
        struct TokenizerFile: Decodable {
            struct Model: Decodable { var type: String; var vocab: [String: Int] }
            struct Added: Decodable { var id: Int; var content: String }
            var model: Model
            var added_tokens: [Added]?
        }
        let path = folder.tokenizerJSON.path
        let file: TokenizerFile
        do { file = try JSONDecoder().decode(TokenizerFile.self, from: Data(contentsOf: folder.tokenizerJSON)) } catch {
            throw ModelError.badConfig(path, "cannot read the WordPiece vocabulary: \(error)")
        }
        guard file.model.type == "WordPiece" else {
            throw ModelError.unsupported("\(path) describes a \(file.model.type) tokenizer; BLIP uses BERT's WordPiece")
        }
        var byID = [String?](repeating: nil, count: file.model.vocab.count)
        for (token, id) in file.model.vocab {
            guard id >= 0, id < byID.count, byID[id] == nil else {
                throw ModelError.badConfig(path, "token ids of the vocabulary are not 0..<\(byID.count) without gaps")
            }
            byID[id] = token
        }
        var vocabulary = byID.map { $0 ?? "" }
        // [DEC] and [ENC] follow the base vocabulary as added tokens.
        for added in (file.added_tokens ?? []).sorted(by: { $0.id < $1.id }) where added.id == vocabulary.count {
            vocabulary.append(added.content)
        }
        try self.init(vocabulary: vocabulary)
    }
}
