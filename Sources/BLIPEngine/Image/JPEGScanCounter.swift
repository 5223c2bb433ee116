/// Counts a JPEG's scans (SOS markers before EOI) by walking its markers, without decoding.
///
/// A progressive JPEG may legally hold hundreds of scans, and libjpeg makes a pass over every
/// block of the image for each one: a few kilobytes of near-empty scans cost seconds (the
/// "progressive scan bomb"). TurboJPEG 2.1's `TJFLAG_LIMITSCANS` stops only at 500 scans and its
/// tj3 `TJPARAM_SCANLIMIT` is not available, so the file is counted first; the walk is linear in
/// the file and allocates nothing.
enum JPEGScanCounter {
    /// Scans up to EOI (or the end of the data); `nil` when the markers cannot be walked
    /// (libjpeg will then report the damage itself).
    static func scans(in bytes: [UInt8]) -> Int? {
        bytes.withUnsafeBufferPointer { scans(in: $0) }
    }

    static func scans(in b: UnsafeBufferPointer<UInt8>) -> Int? {
        let n = b.count
        guard n >= 2, b[0] == 0xFF, b[1] == 0xD8 else { return nil }
        var i = 2
        var count = 0
        while i + 1 < n {
            guard b[i] == 0xFF else { return nil }
            let marker = b[i + 1]
            switch marker {
            case 0xFF:
                i += 1  // fill byte
                continue
            case 0xD9:
                return count  // EOI: libjpeg reads nothing after it
            case 0x01, 0xD0...0xD7, 0xD8:
                i += 2  // markers without a length
                continue
            default:
                break
            }
            guard i + 3 < n else { return count }
            let length = Int(b[i + 2]) << 8 | Int(b[i + 3])
            guard length >= 2 else { return nil }
            i += 2 + length
            guard marker == 0xDA else { continue }
            count += 1
            // Entropy-coded data up to the next marker that is not a stuffed 0x00 or a restart.
            while i + 1 < n {
                if b[i] == 0xFF {
                    let next = b[i + 1]
                    if next == 0x00 || (0xD0...0xD7).contains(next) { i += 2; continue }
                    if next == 0xFF { i += 1; continue }
                    break
                }
                i += 1
            }
        }
        return count
    }
}
