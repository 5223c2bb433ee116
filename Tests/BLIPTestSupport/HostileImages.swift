/// Small files that cost a decoder a lot (issue 13), generated rather than committed:
/// a progressive JPEG with hundreds of near-empty scans, and a PNG of 1 × N pixels that inflates
/// to hundreds of megabytes. Both are valid files (no decoder warning): only limits stop them.
public enum HostileImages {
    // MARK: The progressive-JPEG scan bomb

    /// A valid 8-bit grayscale progressive JPEG of `width`×`height` (flat gray) with `scans` scans:
    /// one DC scan, then single-coefficient AC scans with successive approximation (each of the
    /// 63 coefficients once at Al = 13, then refined bit by bit), up to 883 scans in all. Every AC
    /// scan is a few end-of-band runs, so a scan is ~40 bytes however large the image, yet libjpeg
    /// visits every block for each one. The DC scan costs one bit per 8×8 block.
    public static func progressiveScanBomb(width: Int, height: Int, scans: Int) -> [UInt8] {
        precondition((1...883).contains(scans) && width > 0 && height > 0 && width <= 65500 && height <= 65500)
        var out: [UInt8] = [0xFF, 0xD8]
        func segment(_ marker: UInt8, _ body: [UInt8]) {
            out += [0xFF, marker, UInt8((body.count + 2) >> 8), UInt8((body.count + 2) & 0xFF)] + body
        }
        segment(0xDB, [0x00] + [UInt8](repeating: 1, count: 64))  // DQT 0: all ones
        segment(0xC2, [8, UInt8(height >> 8), UInt8(height & 0xFF), UInt8(width >> 8), UInt8(width & 0xFF),
                       1, 1, 0x11, 0])                           // SOF2: one component
        // DC table 0: one code, "0", for category 0. AC table 0: EOB0…EOB14, four bits each (code n = EOBn).
        var dcCounts = [UInt8](repeating: 0, count: 16); dcCounts[0] = 1
        var acCounts = [UInt8](repeating: 0, count: 16); acCounts[3] = 15
        segment(0xC4, [0x00] + dcCounts + [0x00] + [0x10] + acCounts + (0..<15).map { UInt8($0 << 4) })
        let blocks = ((width + 7) / 8) * ((height + 7) / 8)

        func scan(ss: UInt8, se: UInt8, ah: UInt8, al: UInt8, _ entropy: (inout JPEGBitWriter) -> Void) {
            segment(0xDA, [1, 1, 0x00, ss, se, ah << 4 | al])
            var bits = JPEGBitWriter()
            entropy(&bits)
            out += bits.finish()
        }
        scan(ss: 0, se: 0, ah: 0, al: 0) { bits in
            for _ in 0..<blocks { bits.put(0, count: 1) }
        }
        var written = 1
        stages: for stage in 0...13 {
            for k in UInt8(1)...63 where written < scans {
                let (ah, al): (UInt8, UInt8) = stage == 0 ? (0, 13) : (UInt8(14 - stage), UInt8(13 - stage))
                scan(ss: k, se: k, ah: ah, al: al) { bits in
                    var left = blocks
                    while left > 0 {
                        let run = min(left, 32767)
                        let n = Int.bitWidth - 1 - run.leadingZeroBitCount  // floor(log2(run))
                        bits.put(UInt32(n), count: 4)
                        if n > 0 { bits.put(UInt32(run - (1 << n)), count: n) }
                        left -= run
                    }
                }
                written += 1
            }
            if written >= scans { break stages }
        }
        return out + [0xFF, 0xD9]
    }

    /// Entropy-coded bits, most significant first, with 0xFF byte stuffing and 1-bit padding.
    struct JPEGBitWriter {
        private var bytes: [UInt8] = []
        private var accumulator: UInt32 = 0
        private var used = 0

        mutating func put(_ value: UInt32, count: Int) {
            for i in stride(from: count - 1, through: 0, by: -1) {
                accumulator = accumulator << 1 | (value >> UInt32(i) & 1)
                used += 1
                if used == 8 { emit() }
            }
        }

        private mutating func emit() {
            let byte = UInt8(accumulator & 0xFF)
            bytes.append(byte)
            if byte == 0xFF { bytes.append(0x00) }
            accumulator = 0
            used = 0
        }

        mutating func finish() -> [UInt8] {
            while used != 0 { put(1, count: 1) }
            return bytes
        }
    }

    // MARK: The tall (or wide) PNG

    /// A valid all-zero (black) 8-bit RGB PNG of `width`×`height`, compressed with fixed-Huffman
    /// deflate and 258-byte back-references: 1 × 40,000,000 is ~1 MiB and inflates to 160 MB.
    public static func zeroPNG(width: Int, height: Int) -> [UInt8] {
        precondition(width > 0 && height > 0)
        let raw = height * (1 + 3 * width)  // a filter byte and the samples of each row, all zero
        var deflate = DeflateBitWriter()
        deflate.put(0b1, count: 1)   // BFINAL
        deflate.put(0b01, count: 2)  // fixed Huffman
        deflate.putCode(0x30, length: 8)  // literal 0
        var left = raw - 1
        while left >= 258 {
            deflate.putCode(0xC5, length: 8)  // length 258 (code 285)
            deflate.putCode(0, length: 5)     // distance 1
            left -= 258
        }
        for _ in 0..<left { deflate.putCode(0x30, length: 8) }
        deflate.putCode(0, length: 7)  // end of block
        // Adler-32 of `raw` zero bytes: a stays 1, b adds 1 per byte.
        let adler = UInt32(raw % 65521) << 16 | 1
        let zlib = [0x78, 0x01] + deflate.finish() + bigEndian(adler)

        var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        func chunk(_ type: String, _ data: [UInt8]) {
            let typed = Array(type.utf8) + data
            png += bigEndian(UInt32(data.count)) + typed + bigEndian(crc32(typed))
        }
        chunk("IHDR", bigEndian(UInt32(width)) + bigEndian(UInt32(height)) + [8, 2, 0, 0, 0])
        chunk("IDAT", zlib)
        chunk("IEND", [])
        return png
    }

    /// Deflate's bit order: values least significant bit first, Huffman codes most significant first.
    struct DeflateBitWriter {
        private var bytes: [UInt8] = []
        private var accumulator: UInt64 = 0
        private var used = 0

        mutating func put(_ value: UInt32, count: Int) {
            accumulator |= UInt64(value) << UInt64(used)
            used += count
            while used >= 8 {
                bytes.append(UInt8(accumulator & 0xFF))
                accumulator >>= 8
                used -= 8
            }
        }

        mutating func putCode(_ code: UInt32, length: Int) {
            var reversed: UInt32 = 0
            for i in 0..<length { reversed |= (code >> UInt32(i) & 1) << UInt32(length - 1 - i) }
            put(reversed, count: length)
        }

        mutating func finish() -> [UInt8] {
            if used > 0 { bytes.append(UInt8(accumulator & 0xFF)) }
            return bytes
        }
    }

    static func bigEndian(_ v: UInt32) -> [UInt8] {
        [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)]
    }

    static func crc32(_ data: [UInt8]) -> UInt32 {
        var table = [UInt32](repeating: 0, count: 256)
        for n in 0..<256 {
            var c = UInt32(n)
            for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
            table[n] = c
        }
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in data { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }
}
