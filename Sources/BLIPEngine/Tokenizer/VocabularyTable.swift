/// The token strings of a WordPiece vocabulary, stored as UTF-8 in one buffer, with an open-addressing
/// hash index so that `encode` can look up a byte range of a word (optionally with the `##` continuation
/// prefix in front) without building a `String` for every candidate piece.
struct VocabularyTable: Sendable {
    /// Every token's UTF-8 bytes, back to back; token `i` is `bytes[offsets[i] ..< offsets[i + 1]]`.
    private let bytes: [UInt8]
    /// `count + 1` offsets into `bytes`.
    private let offsets: [Int32]
    /// Hash slots holding token ids; `-1` is empty. The capacity is a power of two at least twice
    /// the number of tokens, so probe chains stay short.
    private let slots: [Int32]
    private let slotMask: Int
    /// The longest token in bytes; no lookup for a longer piece can succeed.
    let longestTokenByteCount: Int

    /// Number of tokens (ids `0 ..< count`).
    var count: Int { offsets.count - 1 }

    /// Builds the table. When a token appears twice, lookups give the later id, as transformers'
    /// `load_vocab` (a dict filled line by line) does; both ids still decode to the token.
    init(tokens: [[UInt8]]) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(tokens.reduce(0) { $0 + $1.count })
        var offsets: [Int32] = [0]
        offsets.reserveCapacity(tokens.count + 1)
        var longest = 0
        for token in tokens {
            bytes.append(contentsOf: token)
            offsets.append(Int32(bytes.count))
            longest = max(longest, token.count)
        }
        var capacity = 16
        while capacity < tokens.count * 2 { capacity <<= 1 }
        var slots = [Int32](repeating: -1, count: capacity)
        let mask = capacity - 1
        bytes.withUnsafeBufferPointer { all in
            for id in tokens.indices {
                let token = UnsafeBufferPointer(rebasing: all[Int(offsets[id]) ..< Int(offsets[id + 1])])
                var slot = Int(truncatingIfNeeded: Self.hash(prefixed: false, token)) & mask
                while slots[slot] >= 0 {
                    let other = Int(slots[slot])
                    if all[Int(offsets[other]) ..< Int(offsets[other + 1])].elementsEqual(token) { break }
                    slot = (slot + 1) & mask
                }
                slots[slot] = Int32(id)
            }
        }
        self.bytes = bytes
        self.offsets = offsets
        self.slots = slots
        self.slotMask = mask
        self.longestTokenByteCount = longest
    }

    /// The id of the token spelled `piece`, or `"##" + piece` when `continuation` is true.
    func id(continuation: Bool, _ piece: UnsafeBufferPointer<UInt8>) -> Int32? {
        let keyCount = piece.count + (continuation ? 2 : 0)
        if keyCount > longestTokenByteCount { return nil }
        var slot = Int(truncatingIfNeeded: Self.hash(prefixed: continuation, piece)) & slotMask
        return bytes.withUnsafeBufferPointer { all in
            while true {
                let id = slots[slot]
                if id < 0 { return nil }
                let start = Int(offsets[Int(id)]), end = Int(offsets[Int(id) + 1])
                if end - start == keyCount {
                    var matches = true
                    var at = start
                    if continuation {
                        matches = all[at] == UInt8(ascii: "#") && all[at + 1] == UInt8(ascii: "#")
                        at += 2
                    }
                    if matches {
                        for k in 0 ..< piece.count where all[at + k] != piece[k] {
                            matches = false
                            break
                        }
                        if matches { return id }
                    }
                }
                slot = (slot + 1) & slotMask
            }
        }
    }

    /// The id of `token`, exactly as spelled in the vocabulary.
    func id(of token: String) -> Int32? {
        var token = token
        return token.withUTF8 { id(continuation: false, $0) }
    }

    /// Calls `body` with the UTF-8 bytes of token `id` (which must be in `0 ..< count`).
    func withBytes<R>(of id: Int, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        bytes.withUnsafeBufferPointer { all in
            body(UnsafeBufferPointer(rebasing: all[Int(offsets[id]) ..< Int(offsets[id + 1])]))
        }
    }

    /// The token string of `id` (which must be in `0 ..< count`).
    func token(_ id: Int) -> String {
        withBytes(of: id) { String(decoding: $0, as: UTF8.self) }
    }

    /// FNV-1a over the key bytes; `prefixed` hashes `"##"` first so a continuation piece hashes like
    /// its vocabulary spelling.
    private static func hash(prefixed: Bool, _ piece: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        if prefixed {
            for _ in 0 ..< 2 { h = (h ^ UInt64(UInt8(ascii: "#"))) &* 0x100_0000_01b3 }
        }
        for byte in piece { h = (h ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return h
    }
}
