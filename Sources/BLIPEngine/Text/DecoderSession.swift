import Foundation

/// The state of one caption's decoding: the image's cross-attention keys/values (shared, see
/// ``ImageMemory``), the self-attention KV cache of every row (beam), and all scratch buffers. Sized
/// once from the config, the number of rows and the maximum sequence length; a step allocates nothing.
public final class DecoderSession {
    let decoder: TextDecoder
    let capacityRows: Int
    let capacityLength: Int
    let imageTokens: Int
    /// Rows (beams) currently decoded.
    public private(set) var rows = 1
    /// Tokens consumed so far by every row (the position of the next token).
    public private(set) var length = 0

    private let hiddenWidth: Int
    private let layerCount: Int
    private var cache: FloatBuffer       // keys then values: (2, layers, capacityRows, capacityLength, hidden)
    private var spareCache: FloatBuffer  // same shape: the target of a reorder, then swapped in
    /// The image's cross-attention keys/values.
    let memory: ImageMemory
    /// This session's own step activations (its rows alone).
    let scratch: DecoderScratch
    /// Longest attention span of a row: max(sequence capacity, image tokens).
    var span: Int { max(capacityLength, imageTokens) }

    /// - Parameters:
    ///   - memory: the image's projected features.
    ///   - maxRows: the most rows (beams) this session will hold.
    ///   - maxLength: the longest sequence, prefix included; at most `max_position_embeddings`.
    init(decoder: TextDecoder, memory: ImageMemory, maxRows: Int, maxLength: Int) {
        let c = decoder.config
        self.decoder = decoder
        self.memory = memory
        self.capacityRows = maxRows
        self.capacityLength = maxLength
        self.imageTokens = memory.imageTokens
        hiddenWidth = c.hiddenSize
        layerCount = c.numHiddenLayers
        let cacheCount = 2 * layerCount * maxRows * maxLength * hiddenWidth
        cache = FloatBuffer(count: cacheCount)
        spareCache = FloatBuffer(count: cacheCount)
        scratch = DecoderScratch(config: c, rows: maxRows, span: max(maxLength, imageTokens))
    }

    // MARK: Cache addressing

    func keyCache(layer: Int, row: Int, position: Int) -> UnsafeMutablePointer<Float> {
        cache.pointer + (((layer * capacityRows) + row) * capacityLength + position) * hiddenWidth
    }

    func valueCache(layer: Int, row: Int, position: Int) -> UnsafeMutablePointer<Float> {
        keyCache(layer: layer + layerCount, row: row, position: position)
    }

    func crossKeys(layer: Int) -> UnsafeMutablePointer<Float> { memory.keys(layer: layer) }
    func crossValues(layer: Int) -> UnsafeMutablePointer<Float> { memory.values(layer: layer) }

    // MARK: Stepping

    /// Appends `tokens[r]` to row r and returns the next-token logits, (rows, vocab) row-major,
    /// valid until the next call.
    public func step(_ tokens: [Int32]) throws(DecoderSessionError) -> UnsafeBufferPointer<Float> {
        try checkStep(tokens)
        decoder.forward(DecoderStep(parts: [.init(session: self, firstRow: 0, tokens: tokens)], rows: rows, scratch: scratch))
        return logits
    }

    /// The logits of the last step, (rows, vocab) row-major.
    var logits: UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: scratch.logits, count: rows * decoder.config.vocabSize)
    }

    /// Throws unless `tokens` can be this session's next step.
    func checkStep(_ tokens: [Int32]) throws(DecoderSessionError) {
        guard tokens.count == rows else { throw .rowMismatch(expected: rows, got: tokens.count) }
        guard length < capacityLength else { throw .sequenceTooLong(capacityLength) }
        let vocab = decoder.config.vocabSize
        for t in tokens where t < 0 || Int(t) >= vocab { throw .tokenOutOfRange(t, vocab) }
    }

    /// Called by the decoder after a step has written this session's keys/values at `length`.
    func advance() { length += 1 }

    /// Re-arranges rows: new row i continues old row `sources[i]`. The row count becomes
    /// `sources.count` (so `[0, 0, 0]` turns one prefix into three beams).
    public func reorder(_ sources: [Int]) {
        precondition(sources.count <= capacityRows && sources.allSatisfy { $0 >= 0 && $0 < rows })
        if sources.count == rows && sources.enumerated().allSatisfy({ $0.offset == $0.element }) { return }
        let span = length * hiddenWidth
        for layer in 0..<(2 * layerCount) {  // keys and values alike
            for (to, from) in sources.enumerated() {
                let offsetTo = ((layer * capacityRows + to) * capacityLength) * hiddenWidth
                let offsetFrom = ((layer * capacityRows + from) * capacityLength) * hiddenWidth
                (spareCache.pointer + offsetTo).update(from: cache.pointer + offsetFrom, count: span)
            }
        }
        swap(&cache, &spareCache)
        rows = sources.count
    }
}

/// Misuse of a decoder session; these indicate a bug in the caller, not bad input.
public enum DecoderSessionError: Error, Sendable, Equatable, CustomStringConvertible {
    case rowMismatch(expected: Int, got: Int)
    case sequenceTooLong(Int)
    case tokenOutOfRange(Int32, Int)

    public var description: String {
        switch self {
        case .rowMismatch(let e, let g): "decoder step got \(g) tokens for \(e) rows"
        case .sequenceTooLong(let n): "sequence would exceed \(n) tokens (the session's length or max_position_embeddings)"
        case .tokenOutOfRange(let t, let v): "token id \(t) is outside the vocabulary of \(v)"
        }
    }
}

/// The generator drives the decoder through this interface.
extension DecoderSession: TokenStepper {
    public var vocabularySize: Int { decoder.config.vocabSize }
}
