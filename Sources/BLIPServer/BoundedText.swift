extension String {
    /// This text cut to at most `limit` UTF-8 bytes (on a character boundary), marked when cut:
    /// how every client-supplied string is echoed in a response or written to the log, so a client
    /// cannot make either as large as its frame.
    func bounded(_ limit: Int = 256) -> String {
        guard utf8.count > limit else { return self }
        var kept = Substring()
        var bytes = 0
        for character in self {
            let size = character.utf8.count
            if bytes + size > limit { break }
            bytes += size
            kept.append(character)
        }
        return "\(kept)… (cut: \(utf8.count) bytes)"
    }
}
