/// Reads the EXIF orientation tag (0x0112 in IFD0) and applies it like Pillow's
/// `ImageOps.exif_transpose`. The parser takes untrusted bytes: every offset is bounds-checked
/// and anything malformed simply means "no orientation".
enum EXIFOrientation {
    /// Orientation from a JPEG's `APP1` "Exif\0\0" segments, scanning markers up to the first
    /// start-of-scan. Like Pillow, the payloads of several Exif segments are concatenated.
    static func fromJPEG(_ bytes: [UInt8]) -> Int? {
        var tiff: [UInt8] = []
        var i = 2  // after SOI
        let n = bytes.count
        while i + 4 <= n {
            guard bytes[i] == 0xFF else { return nil }
            let marker = bytes[i + 1]
            if marker == 0xFF { i += 1; continue }  // fill byte
            if marker == 0xD8 || marker == 0x01 || (0xD0...0xD7).contains(marker) { i += 2; continue }
            if marker == 0xDA || marker == 0xD9 { break }  // entropy-coded data follows
            let length = Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
            guard length >= 2, i + 2 + length <= n else { break }
            let start = i + 4, end = i + 2 + length
            if marker == 0xE1, end - start >= 6,
               bytes[start..<start + 6].elementsEqual([0x45, 0x78, 0x69, 0x66, 0, 0]) {
                tiff.append(contentsOf: bytes[(start + 6)..<end])
            }
            i = end
        }
        guard !tiff.isEmpty else { return nil }
        return tiff.withUnsafeBufferPointer { fromTIFF($0) }
    }

    /// Orientation from a TIFF structure ("II*\0" or "MM\0*" header, then IFD0).
    /// - Returns: 1...8, or `nil` when absent, malformed, or not a single SHORT/LONG value.
    static func fromTIFF(_ b: UnsafeBufferPointer<UInt8>) -> Int? {
        guard b.count >= 8 else { return nil }
        let little: Bool
        switch (b[0], b[1]) {
        case (0x49, 0x49): little = true
        case (0x4D, 0x4D): little = false
        default: return nil
        }
        func u16(_ o: Int) -> Int? {
            guard o >= 0, o <= b.count - 2 else { return nil }
            return little ? Int(b[o]) | Int(b[o + 1]) << 8 : Int(b[o]) << 8 | Int(b[o + 1])
        }
        func u32(_ o: Int) -> Int? {
            guard let lo = u16(little ? o : o + 2), let hi = u16(little ? o + 2 : o) else { return nil }
            return hi << 16 | lo
        }
        guard u16(2) == 42, let ifd = u32(4), let count = u16(ifd) else { return nil }
        for e in 0..<count {
            let entry = ifd + 2 + 12 * e
            guard let tag = u16(entry) else { return nil }
            guard tag == 0x0112 else { continue }
            guard let type = u16(entry + 2), let n = u32(entry + 4), n == 1 else { return nil }
            let value: Int?
            switch type {
            case 3: value = u16(entry + 8)   // SHORT, stored in the first two bytes of the value field
            case 4: value = u32(entry + 8)   // LONG
            default: value = nil
            }
            guard let v = value, (1...8).contains(v) else { return nil }
            return v
        }
        return nil
    }

    /// Applies orientation `o` (1...8) as `exif_transpose` does:
    /// 2 flip left-right, 3 rotate 180, 4 flip top-bottom, 5 transpose, 6 rotate 90° clockwise,
    /// 7 transverse, 8 rotate 90° counter-clockwise.
    static func apply(_ o: Int, to image: RGBImage) -> RGBImage {
        guard (2...8).contains(o) else { return image }
        let (w, h) = (image.width, image.height)
        let swaps = o >= 5
        let (ow, oh) = swaps ? (h, w) : (w, h)
        var out = [UInt8](repeating: 0, count: image.pixels.count)
        image.pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                let s = src.baseAddress!, d = dst.baseAddress!
                for y in 0..<oh {
                    for x in 0..<ow {
                        // Source pixel for output (x, y).
                        let (sx, sy): (Int, Int)
                        switch o {
                        case 2: (sx, sy) = (w - 1 - x, y)
                        case 3: (sx, sy) = (w - 1 - x, h - 1 - y)
                        case 4: (sx, sy) = (x, h - 1 - y)
                        case 5: (sx, sy) = (y, x)
                        case 6: (sx, sy) = (y, h - 1 - x)
                        case 7: (sx, sy) = (w - 1 - y, h - 1 - x)
                        default: (sx, sy) = (w - 1 - y, x)
                        }
                        let si = 3 * (sy * w + sx), di = 3 * (y * ow + x)
                        d[di] = s[si]; d[di + 1] = s[si + 1]; d[di + 2] = s[si + 2]
                    }
                }
            }
        }
        return RGBImage(width: ow, height: oh, pixels: out)
    }
}
