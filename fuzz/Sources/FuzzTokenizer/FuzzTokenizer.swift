import BLIPEngine
import Foundation

/// The tokenizer over the fixtures' bert-base-uncased vocabulary, loaded once.
let tokenizer: WordPieceTokenizer = {
    let vocab = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Tests/Fixtures/vocab.txt")
    return try! WordPieceTokenizer(vocabularyFile: vocab)
}()

/// encode → decode → encode on arbitrary (UTF-8-repaired) text. Invariants: no crash; every id is
/// in the vocabulary; decoding then re-encoding a sequence without special tokens ([UNK], and the
/// literal "[SEP]"-style tokens that decode skips) gives it back.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTokenizer(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let ids = tokenizer.encode(text)
    precondition(ids.allSatisfy { $0 >= 0 && Int($0) < tokenizer.vocabularySize })
    let decoded = tokenizer.decode(ids)
    _ = tokenizer.encodeWithSpecialTokens(text)
    let special = Set(tokenizer.specialIDs.all)
    if !ids.contains(where: special.contains) {
        let again = tokenizer.encode(decoded)
        precondition(again == ids, "round trip: \(Array(text.unicodeScalars.map(\.value))) → \(ids) → \"\(decoded)\" → \(again)")
    }
    return 0
}
