/// Decodes Windows BMP in Swift (no C library), following Pillow 13's BmpImagePlugin, its raw
/// unpackers and its RLE decoder, so the pixels are Pillow's.
///
/// Read: the OS/2 1.x (12-byte) and Windows 3–5 (40, 52, 56, 64, 108, 124-byte) headers; 1, 4 and
/// 8-bit palettes (raw, RLE8, RLE4), 16-bit 5-5-5 and (BITFIELDS) 5-6-5, 24-bit, 32-bit BGRX and the
/// BITFIELDS layouts Pillow knows (with alpha: composited over white); bottom-up and top-down rows.
/// Pillow's rules kept: a palette of greys (entry i = (i, i, i), or black and white for 2 colours)
/// is read as grey levels; an index past the palette is black; 32-bit without BITFIELDS ignores the
/// fourth byte; RLE "delta" records append zeros (index 0); RLE data that does not fill the image is
/// an error. Refused like Pillow: JPEG/PNG compression, other bit depths and BITFIELDS layouts,
/// palettes of more than 256 colours; also (Pillow misreads them) a grey palette on raw 4-bit data, a
/// 2-colour grey palette on 4/8-bit or RLE data. Memory: the RGB result, plus for RLE one index per pixel.
enum BMPDecoder {
    /// What the headers say, before any pixel memory is allocated.
    struct Header {
        var width = 0, height = 0, bits = 0, compression = 0
        var topDown = false
        var dataOffset = 0
        var paletteOffset = 0, paletteEntrySize = 4, colors = 0
        /// Byte positions of R, G, B (and A) in a 32-bit pixel; nil for the other depths.
        var layout32: (r: Int, g: Int, b: Int, a: Int?)? = nil
        /// 16-bit: 5-6-5 (BITFIELDS F800/07E0/001F) instead of 5-5-5.
        var is565 = false
    }

    static func decode(_ bytes: [UInt8], limits: ImageLimits, stopCheck: ImageStopCheck = .none) throws(ImageError) -> RGBImage {
        let header = try readHeader(bytes)
        try limits.check(width: header.width, height: header.height)
        let (w, h) = (header.width, header.height)

        var lut = [UInt8](repeating: 0, count: 256 * 3)
        if header.bits <= 8 { try palette(bytes, header, into: &lut) }

        var rgb = [UInt8](repeating: 0, count: w * h * 3)
        if header.compression == 1 || header.compression == 2 {
            let indices = try decodeRLE(bytes, header, stopCheck: stopCheck)
            for y in 0..<h {
                let src = header.topDown ? y : h - 1 - y
                for x in 0..<w {
                    let i = 3 * Int(indices[src * w + x]), o = 3 * (y * w + x)
                    rgb[o] = lut[i]; rgb[o + 1] = lut[i + 1]; rgb[o + 2] = lut[i + 2]
                }
            }
            return RGBImage(width: w, height: h, pixels: rgb)
        }

        let stride = ((w * header.bits + 31) >> 3) & ~3
        let rowBytes = (w * header.bits + 7) / 8
        guard header.dataOffset <= bytes.count, (bytes.count - header.dataOffset - rowBytes) / stride >= h - 1,
              bytes.count - header.dataOffset >= rowBytes else {
            throw .corrupt(format: "BMP", detail: "the pixel data ends early (\(h) rows of \(stride) bytes from offset \(header.dataOffset), file \(bytes.count) bytes)")
        }
        try bytes.withUnsafeBufferPointer { (src) throws(ImageError) in
            try rgb.withUnsafeMutableBufferPointer { (dst) throws(ImageError) in
                for y in 0..<h {
                    let fileRow = header.topDown ? y : h - 1 - y
                    let s = src.baseAddress! + header.dataOffset + fileRow * stride
                    unpackRow(s, width: w, header: header, lut: lut, into: dst.baseAddress! + 3 * w * y)
                    if y & 255 == 255 { try stopCheck.check() }
                }
            }
        }
        return RGBImage(width: w, height: h, pixels: rgb)
    }

    private static func unsupported(_ detail: String) -> ImageError { .unsupported(format: "BMP", detail: detail) }

    static func readHeader(_ b: [UInt8]) throws(ImageError) -> Header {
        func u16(_ o: Int) -> Int { Int(b[o]) | Int(b[o + 1]) << 8 }
        func u32(_ o: Int) -> Int { u16(o) | u16(o + 2) << 16 }
        guard b.count >= 18, b[0] == UInt8(ascii: "B"), b[1] == UInt8(ascii: "M") else {
            throw .corrupt(format: "BMP", detail: "no BM file header")
        }
        var h = Header()
        let headerSize = u32(14)
        guard b.count >= 14 + headerSize else { throw .corrupt(format: "BMP", detail: "the file ends inside its header") }
        var offset = u32(10)
        switch headerSize {
        case 12:
            (h.width, h.height, h.bits) = (u16(18), u16(20), u16(24))
            h.paletteEntrySize = 3
        case 40, 52, 56, 64, 108, 124:
            h.topDown = b[25] == 0xFF
            h.width = u32(18)
            h.height = h.topDown ? (1 << 32) - u32(22) : u32(22)
            h.bits = u16(28)
            h.compression = u32(30)
            h.colors = u32(46)
        default:
            throw unsupported("a \(headerSize)-byte info header")
        }
        if h.colors == 0 { h.colors = 1 << min(h.bits, 24) }
        h.paletteOffset = 14 + headerSize
        if offset == 14 + headerSize, h.bits <= 8 { offset += h.paletteEntrySize * h.colors }
        h.dataOffset = offset

        guard [1, 4, 8, 16, 24, 32].contains(h.bits) else { throw unsupported("\(h.bits) bits per pixel") }
        if h.bits == 32 { h.layout32 = (r: 2, g: 1, b: 0, a: nil) }  // BGRX
        switch h.compression {
        case 0:
            break
        case 1, 2:
            guard h.bits == (h.compression == 1 ? 8 : 4) else {
                throw unsupported("RLE\(h.compression == 1 ? 8 : 4) with \(h.bits) bits per pixel")
            }
        case 3:
            // BITFIELDS: the masks follow a 40-byte header, or are its fields 40... in the longer ones.
            var masks: [Int]
            if headerSize >= 52 {
                masks = [u32(54), u32(58), u32(62), headerSize >= 56 ? u32(66) : 0]
            } else {
                guard b.count >= 14 + headerSize + 12 else { throw .corrupt(format: "BMP", detail: "the file ends inside its colour masks") }
                masks = [u32(54), u32(58), u32(62), 0]
            }
            switch (h.bits, masks) {
            case (32, [0xFF0000, 0xFF00, 0xFF, 0]): h.layout32 = (2, 1, 0, nil)                 // BGRX
            case (32, [0xFF00_0000, 0xFF0000, 0xFF00, 0]): h.layout32 = (3, 2, 1, nil)          // XBGR
            case (32, [0xFF00_0000, 0xFF00, 0xFF, 0]): h.layout32 = (3, 1, 0, nil)              // BGXR
            case (32, [0xFF00_0000, 0xFF0000, 0xFF00, 0xFF]): h.layout32 = (3, 2, 1, 0)         // ABGR
            case (32, [0xFF, 0xFF00, 0xFF0000, 0xFF00_0000]): h.layout32 = (0, 1, 2, 3)         // RGBA
            case (32, [0xFF0000, 0xFF00, 0xFF, 0xFF00_0000]), (32, [0, 0, 0, 0]): h.layout32 = (2, 1, 0, 3)  // BGRA
            case (32, [0xFF00_0000, 0xFF00, 0xFF, 0xFF0000]): h.layout32 = (3, 1, 0, 2)         // BGAR
            case (24, let m) where m[0..<3] == [0xFF0000, 0xFF00, 0xFF]: break                  // BGR
            case (16, let m) where m[0..<3] == [0xF800, 0x7E0, 0x1F]: h.is565 = true
            case (16, let m) where m[0..<3] == [0x7C00, 0x3E0, 0x1F]: break
            default: throw unsupported("the BITFIELDS layout \(masks.map { String($0, radix: 16) }) at \(h.bits) bits")
            }
        case 4: throw unsupported("JPEG compression inside BMP")
        case 5: throw unsupported("PNG compression inside BMP")
        default: throw unsupported("compression \(h.compression)")
        }
        return h
    }

    /// Fills `lut` (sample → RGB) from the palette. A grey palette makes Pillow read the samples as
    /// grey levels (mode "L"), or for 2 colours as bits (mode "1": 0 or 255).
    private static func palette(_ b: [UInt8], _ h: Header, into lut: inout [UInt8]) throws(ImageError) {
        guard h.colors > 0, h.colors <= 256 else { throw unsupported("a palette of \(h.colors) colours") }
        let n = h.paletteEntrySize
        guard h.paletteOffset + n * h.colors <= b.count else { throw .corrupt(format: "BMP", detail: "the file ends inside its palette") }
        let grey = (0..<h.colors).allSatisfy { i in
            let v = h.colors == 2 ? (i == 0 ? 0 : 255) : i
            let o = h.paletteOffset + n * i
            return Int(b[o]) == v && Int(b[o + 1]) == v && Int(b[o + 2]) == v
        }
        if grey {
            // Mode "1" (≤ 2 colours) or "L": the raw sample is the grey level, not an index; Pillow
            // unpacks it as 1 or 8 bits whatever the file's depth (RLE indices are whole bytes).
            let bilevel = h.colors <= 2
            let rle = h.compression == 1 || h.compression == 2
            guard bilevel ? (h.bits == 1 && !rle) : (h.bits == 8 || rle) else {
                throw unsupported("a grey palette of \(h.colors) colours on \(h.bits)-bit pixels (Pillow misreads it)")
            }
            for i in 0..<256 { for c in 0..<3 { lut[3 * i + c] = UInt8(i) } }
            if bilevel { for c in 0..<3 { lut[3 + c] = 255 } }
            return
        }
        for i in 0..<h.colors {
            let o = h.paletteOffset + n * i
            lut[3 * i] = b[o + 2]; lut[3 * i + 1] = b[o + 1]; lut[3 * i + 2] = b[o]
        }
    }

    private static func unpackRow(_ s: UnsafePointer<UInt8>, width w: Int, header: Header, lut: [UInt8],
                                  into d: UnsafeMutablePointer<UInt8>) {
        switch header.bits {
        case 1, 4, 8:
            let bits = header.bits, perByte = 8 / bits, mask = (1 << bits) - 1
            for x in 0..<w {
                let shift = 8 - bits * (x % perByte + 1)
                let i = 3 * ((Int(s[x / perByte]) >> shift) & mask)
                d[3 * x] = lut[i]; d[3 * x + 1] = lut[i + 1]; d[3 * x + 2] = lut[i + 2]
            }
        case 16:
            for x in 0..<w {
                let p = Int(s[2 * x]) | Int(s[2 * x + 1]) << 8
                d[3 * x + 2] = UInt8((p & 31) * 255 / 31)
                if header.is565 {
                    d[3 * x + 1] = UInt8(((p >> 5) & 63) * 255 / 63)
                    d[3 * x] = UInt8(((p >> 11) & 31) * 255 / 31)
                } else {
                    d[3 * x + 1] = UInt8(((p >> 5) & 31) * 255 / 31)
                    d[3 * x] = UInt8(((p >> 10) & 31) * 255 / 31)
                }
            }
        case 24:
            for x in 0..<w { d[3 * x] = s[3 * x + 2]; d[3 * x + 1] = s[3 * x + 1]; d[3 * x + 2] = s[3 * x] }
        default:
            let l = header.layout32!
            for x in 0..<w {
                let p = s + 4 * x
                let a: UInt8 = l.a.map { p[$0] } ?? 255
                d[3 * x] = PillowPixelMath.overWhite(p[l.r], alpha: a)
                d[3 * x + 1] = PillowPixelMath.overWhite(p[l.g], alpha: a)
                d[3 * x + 2] = PillowPixelMath.overWhite(p[l.b], alpha: a)
            }
        }
    }

    /// Pillow's `BmpRleDecoder`: the indices of `width * height` pixels in file row order.
    private static func decodeRLE(_ b: [UInt8], _ h: Header, stopCheck: ImageStopCheck) throws(ImageError) -> [UInt8] {
        let rle4 = h.compression == 2
        let xsize = h.width, total = h.width * h.height
        var data = [UInt8](repeating: 0, count: total)
        var n = 0, x = 0, pos = h.dataOffset
        var records = 0
        func put(_ v: UInt8) { if n < total { data[n] = v }; n += 1 }
        while n < total {
            guard pos + 2 <= b.count else { break }
            let count = Int(b[pos]), byte = b[pos + 1]
            pos += 2
            records += 1
            if records & 0xFFFF == 0 { try stopCheck.check() }
            if count > 0 {
                // Encoded run, cut at the row's end.
                let run = x + count > xsize ? max(0, xsize - x) : count
                for i in 0..<run { put(rle4 ? (i % 2 == 0 ? byte >> 4 : byte & 0x0F) : byte) }
                x += run
            } else if byte == 0 {
                // End of line: zeros to the next row boundary.
                while n % xsize != 0 { put(0) }
                x = 0
            } else if byte == 1 {
                break
            } else if byte == 2 {
                guard pos + 2 <= b.count else { break }
                let (right, up) = (Int(b[pos]), Int(b[pos + 1]))
                pos += 2
                n += min(total - n, right + up * xsize)  // zeros, already there
                x = n % xsize
            } else {
                // Absolute run of `byte` indices, padded to an even file offset.
                let dataCount = min(total - n, Int(byte))
                let byteCount = rle4 ? (dataCount + 1) / 2 : dataCount
                let available = min(byteCount, b.count - pos)
                for i in 0..<available {
                    let v = b[pos + i]
                    if rle4 {
                        put(v >> 4)
                        if i * 2 + 1 < dataCount { put(v & 0x0F) }
                    } else {
                        put(v)
                    }
                }
                pos += available
                if available < byteCount || n == total { break }
                x += Int(byte)
                if pos % 2 != 0 { pos += 1 }
            }
        }
        guard n >= total else {
            throw .corrupt(format: "BMP", detail: "the RLE data fills \(n) of \(total) pixels")
        }
        return data
    }
}
