/// OpenAI's `stop` over a caption as it grows: the text is handed out up to the first stop
/// sequence, never including it, and a tail that could still become one is held back until the
/// next piece (or the end) decides.
struct StopSequences {
    let stops: [String]
    private(set) var text = ""
    /// Characters of `text` handed out so far.
    private var sent = 0
    /// A stop sequence was found: nothing more is handed out.
    private(set) var stopped = false

    init(_ stops: [String]) { self.stops = stops.filter { !$0.isEmpty } }

    /// Appends `piece`; returns what may be handed out now. With `final`, nothing is held back.
    mutating func take(_ piece: String, final: Bool = false) -> String {
        guard !stopped else { return "" }
        text += piece
        var end = text.count
        if let cut = Self.cut(text, at: stops) {
            end = cut.count
            stopped = true
        } else if !final {
            end -= heldBack()
        }
        guard end > sent else { return "" }
        let out = String(text.dropFirst(sent).prefix(end - sent))
        sent = end
        return out
    }

    /// The longest tail of `text` that is the start of a stop sequence.
    private func heldBack() -> Int {
        var longest = 0
        for stop in stops {
            for length in stride(from: min(stop.count - 1, text.count), to: longest, by: -1)
            where text.hasSuffix(String(stop.prefix(length))) {
                longest = length
                break
            }
        }
        return longest
    }

    /// `text` cut before the first of `stops` it contains; `nil` when it contains none.
    static func cut(_ text: String, at stops: [String]) -> String? {
        let hits = stops.filter { !$0.isEmpty }.compactMap { text.range(of: $0)?.lowerBound }
        return hits.min().map { String(text[..<$0]) }
    }
}
