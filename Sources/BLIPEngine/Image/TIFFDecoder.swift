import CTIFF
import Glibc

/// Decodes the first page of a TIFF with libtiff, row by row, reproducing Pillow 13's modes and
/// unpackers (TiffImagePlugin's OPEN_INFO) and transformers' conversion to RGB.
///
/// Read (interleaved samples, unsigned integers; any compression libtiff decodes: none, LZW,
/// Deflate, PackBits, JPEG, CCITT; predictors and fill order are libtiff's business; strips or tiles):
/// - grey, black-is-zero or white-is-zero, 1/2/4/8 bits (scaled to 0…255 as Pillow's `L;2`, `L;4`);
///   16 bits as Pillow's `I;16` (clipped at 255 on conversion, not scaled); grey + alpha (8 bits).
/// - RGB 8 bits; + alpha (unassociated, or associated and un-premultiplied as Pillow's `RGBa`), or an
///   unspecified fourth sample (ignored); RGB 16 bits (+ alpha), the high byte of each sample.
/// - palette 1/2/4/8 bits (the high byte of each 16-bit colormap entry), CMYK 8 bits (Pillow's
///   `cmyk2rgb`), YCbCr in JPEG (libjpeg converts to RGB, as Pillow asks libtiff to).
/// Not read: separate planes, floating-point or signed samples, YCbCr outside JPEG, Lab, premultiplied
/// grey or 16-bit RGB. Pillow applies the Orientation tag when it loads a TIFF (always, not only in
/// `exif_transpose`), so the orientation returned is to be applied whatever the caller's EXIF choice.
/// Memory: the RGB result, one tile row (or one row) of samples, and libtiff's compressed strip.
enum TIFFDecoder {
    /// The sample layout, decided from the tags before pixel memory is allocated.
    enum Layout {
        case grey(bits: Int, whiteIsZero: Bool)
        case grey16
        case greyAlpha(ignoreAlpha: Bool)
        case rgb8(samples: Int, alpha: Alpha)
        case rgb16(samples: Int, alpha: Alpha)
        case palette(bits: Int)
        case cmyk8
        /// YCbCr in JPEG, handed to us as RGB by libjpeg.
        case ycbcrJPEG
    }
    enum Alpha { case none, ignored, straight, premultiplied }

    static func decode(_ bytes: [UInt8], limits: ImageLimits,
                       stopCheck: ImageStopCheck = .none) throws(ImageError) -> (RGBImage, orientation: Int?) {
        let file = try TIFFFile(bytes, limits: limits)
        defer { file.close() }
        let tif: OpaquePointer = file.tif
        var w32: UInt32 = 0, h32: UInt32 = 0
        guard TIFFGetField_u32(tif, TIFFTAG_IMAGEWIDTH, &w32), TIFFGetField_u32(tif, TIFFTAG_IMAGELENGTH, &h32) else {
            throw file.corrupt("the image has no width or height")
        }
        let (w, h) = (Int(w32), Int(h32))
        try limits.check(width: w, height: h)

        let layout = try self.layout(tif, file: file)
        var palette: [UInt8] = []
        if case .palette(let bits) = layout {
            var r: UnsafeMutablePointer<UInt16>? = nil, g: UnsafeMutablePointer<UInt16>? = nil, b: UnsafeMutablePointer<UInt16>? = nil
            guard TIFFGetField_colormap(tif, &r, &g, &b), let r, let g, let b else { throw file.corrupt("a palette image without a colormap") }
            palette = [UInt8](repeating: 0, count: 256 * 3)
            for i in 0..<(1 << bits) {
                palette[3 * i] = UInt8(r[i] >> 8); palette[3 * i + 1] = UInt8(g[i] >> 8); palette[3 * i + 2] = UInt8(b[i] >> 8)
            }
        }
        var orientation: UInt16 = 1
        _ = TIFFGetField_u16(tif, TIFFTAG_ORIENTATION, &orientation)

        var rgb = [UInt8](repeating: 0, count: w * h * 3)
        try rgb.withUnsafeMutableBufferPointer { (out) throws(ImageError) in
            try file.forEachRow(width: w, height: h, stopCheck: stopCheck) { y, row in
                convertRow(row, layout: layout, palette: palette, width: w, into: out.baseAddress! + 3 * w * y)
            }
        }
        return (RGBImage(width: w, height: h, pixels: rgb), Int(orientation))
    }

    private static func layout(_ tif: OpaquePointer, file: TIFFFile) throws(ImageError) -> Layout {
        var bits: UInt16 = 1, spp: UInt16 = 1, photometric: UInt16 = 0, planar: UInt16 = 1, format: UInt16 = 1, compression: UInt16 = 1
        _ = TIFFGetFieldDefaulted_u16(tif, TIFFTAG_BITSPERSAMPLE, &bits)
        _ = TIFFGetFieldDefaulted_u16(tif, TIFFTAG_SAMPLESPERPIXEL, &spp)
        _ = TIFFGetFieldDefaulted_u16(tif, TIFFTAG_PLANARCONFIG, &planar)
        _ = TIFFGetFieldDefaulted_u16(tif, TIFFTAG_SAMPLEFORMAT, &format)
        _ = TIFFGetFieldDefaulted_u16(tif, TIFFTAG_COMPRESSION, &compression)
        if !TIFFGetField_u16(tif, TIFFTAG_PHOTOMETRIC, &photometric) { photometric = 0 }  // Pillow's default
        var extraCount: UInt16 = 0
        var extraTypes: UnsafeMutablePointer<UInt16>? = nil
        _ = TIFFGetFieldDefaulted_extrasamples(tif, &extraCount, &extraTypes)
        let extra = (0..<Int(extraCount)).map { Int(extraTypes![$0]) }
        func unsupported(_ what: String) -> ImageError { .unsupported(format: "TIFF", detail: what) }

        guard planar == 1 || spp == 1 else { throw unsupported("samples stored in separate planes") }
        guard format == 1 else { throw unsupported("sample format \(format) (signed or floating point)") }
        switch (photometric, spp, bits) {
        case (0, 1, 1), (0, 1, 2), (0, 1, 4), (0, 1, 8), (1, 1, 1), (1, 1, 2), (1, 1, 4), (1, 1, 8):
            return .grey(bits: Int(bits), whiteIsZero: photometric == 0)
        case (0, 1, 16), (1, 1, 16):
            return .grey16
        case (1, 2, 8) where extra == [0] || extra == [2]:
            return .greyAlpha(ignoreAlpha: extra == [0])
        case (2, 3, 8), (2, 4, 8):
            return .rgb8(samples: Int(spp), alpha: try alpha(spp: spp, extra: extra, unsupported))
        case (2, 3, 16), (2, 4, 16):
            let a = try alpha(spp: spp, extra: extra, unsupported)
            guard a != .premultiplied else { throw unsupported("16-bit premultiplied alpha") }
            return .rgb16(samples: Int(spp), alpha: a)
        case (3, 1, 1), (3, 1, 2), (3, 1, 4), (3, 1, 8):
            return .palette(bits: Int(bits))
        case (5, 4, 8):
            var inkset: UInt16 = 1
            _ = TIFFGetFieldDefaulted_u16(tif, TIFFTAG_INKSET, &inkset)
            guard inkset == 1 else { throw unsupported("separated image with ink set \(inkset) (not CMYK)") }
            return .cmyk8
        case (6, 3, 8) where compression == 7:
            // Let libjpeg convert YCbCr to RGB (and undo the subsampling), as Pillow has libtiff do.
            guard TIFFSetField_i32(tif, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB) else { throw file.corrupt("JPEGCOLORMODE") }
            return .ycbcrJPEG
        case (6, _, _):
            throw unsupported("YCbCr outside JPEG compression")
        default:
            throw unsupported("photometric \(photometric) with \(spp) samples of \(bits) bits")
        }
    }

    private static func alpha(spp: UInt16, extra: [Int], _ unsupported: (String) -> ImageError) throws(ImageError) -> Alpha {
        guard spp == 4 else { return .none }
        switch extra.first {
        case nil, 2, 999: return .straight   // Pillow: no ExtraSamples reads as RGBA
        case 0: return .ignored
        case 1: return .premultiplied
        default: throw unsupported("extra sample kind \(extra)")
        }
    }

    /// One row of raw samples → RGB8, as Pillow's unpacker then `convert_to_rgb` would.
    private static func convertRow(_ s: UnsafePointer<UInt8>, layout: Layout, palette: [UInt8], width w: Int,
                                   into d: UnsafeMutablePointer<UInt8>) {
        @inline(__always) func put(_ x: Int, _ r: UInt8, _ g: UInt8, _ b: UInt8) { d[3 * x] = r; d[3 * x + 1] = g; d[3 * x + 2] = b }
        switch layout {
        case let .grey(bits, whiteIsZero):
            let perByte = 8 / bits, mask = (1 << bits) - 1, scale = 255 / mask
            for x in 0..<w {
                let v = (Int(s[x / perByte]) >> (8 - bits * (x % perByte + 1))) & mask
                let g = UInt8(whiteIsZero ? 255 - v * scale : v * scale)
                put(x, g, g, g)
            }
        case .grey16:
            s.withMemoryRebound(to: UInt16.self, capacity: w) { p in
                for x in 0..<w { let g = UInt8(min(p[x], 255)); put(x, g, g, g) }  // native order, as libtiff gives it
            }
        case let .greyAlpha(ignoreAlpha):
            for x in 0..<w {
                let g = PillowPixelMath.overWhite(s[2 * x], alpha: ignoreAlpha ? 255 : s[2 * x + 1])
                put(x, g, g, g)
            }
        case let .rgb8(n, alpha):
            for x in 0..<w {
                let p = s + n * x
                switch alpha {
                case .none, .ignored: put(x, p[0], p[1], p[2])
                case .straight:
                    put(x, PillowPixelMath.overWhite(p[0], alpha: p[3]), PillowPixelMath.overWhite(p[1], alpha: p[3]),
                        PillowPixelMath.overWhite(p[2], alpha: p[3]))
                case .premultiplied:
                    let a = p[3]
                    func unpremultiply(_ v: UInt8) -> UInt8 {
                        a == 0 ? 0 : a == 255 ? v : UInt8(min(Int(v) * 255 / Int(a), 255))
                    }
                    put(x, PillowPixelMath.overWhite(unpremultiply(p[0]), alpha: a),
                        PillowPixelMath.overWhite(unpremultiply(p[1]), alpha: a), PillowPixelMath.overWhite(unpremultiply(p[2]), alpha: a))
                }
            }
        case let .rgb16(n, alpha):
            s.withMemoryRebound(to: UInt16.self, capacity: n * w) { p in
                for x in 0..<w {
                    let q = p + n * x
                    let (r, g, b) = (UInt8(q[0] >> 8), UInt8(q[1] >> 8), UInt8(q[2] >> 8))
                    if alpha == .straight {
                        let a = UInt8(q[3] >> 8)
                        put(x, PillowPixelMath.overWhite(r, alpha: a), PillowPixelMath.overWhite(g, alpha: a), PillowPixelMath.overWhite(b, alpha: a))
                    } else {
                        put(x, r, g, b)
                    }
                }
            }
        case let .palette(bits):
            let perByte = 8 / bits, mask = (1 << bits) - 1
            for x in 0..<w {
                let i = 3 * ((Int(s[x / perByte]) >> (8 - bits * (x % perByte + 1))) & mask)
                put(x, palette[i], palette[i + 1], palette[i + 2])
            }
        case .cmyk8:
            // Pillow's cmyk2rgb on plain CMYK = the JPEG helper on inverted samples.
            for x in 0..<w {
                let p = s + 4 * x
                PillowPixelMath.rgbFromJPEGCMYK(255 - p[0], 255 - p[1], 255 - p[2], 255 - p[3], into: d + 3 * x)
            }
        case .ycbcrJPEG:
            for x in 0..<w { put(x, s[3 * x], s[3 * x + 1], s[3 * x + 2]) }
        }
    }
}

/// One libtiff handle reading from memory, with libtiff's messages kept rather than printed.
final class TIFFFile {
    private(set) var tif: OpaquePointer! = nil
    private let reader: TIFFMemoryReader
    /// libtiff's last error message (its handlers write here instead of standard error).
    fileprivate var lastError = ""

    init(_ bytes: [UInt8], limits: ImageLimits) throws(ImageError) {
        reader = TIFFMemoryReader(bytes)
        guard let options = TIFFOpenOptionsAlloc() else { throw .unsupported(format: "TIFF", detail: "TIFFOpenOptionsAlloc failed") }
        defer { TIFFOpenOptionsFree(options) }
        // No single libtiff allocation beyond what one image at the pixel limit needs (8 bytes a pixel).
        TIFFOpenOptionsSetMaxSingleMemAlloc(options, tmsize_t(min(limits.maxPixels, Int(Int32.max) / 8) * 8))
        let me = Unmanaged.passUnretained(self).toOpaque()
        TIFFOpenOptionsSetErrorHandlerExtR(options, tiffMessage, me)
        TIFFOpenOptionsSetWarningHandlerExtR(options, tiffWarning, me)
        let handle = Unmanaged.passUnretained(reader).toOpaque()
        tif = TIFFClientOpenExt("memory", "rm", handle, tiffRead, tiffWrite, tiffSeek, tiffClose, tiffSize,
                                tiffMap, tiffUnmap, options)
        guard tif != nil else { throw corrupt("the header or first directory does not parse") }
    }

    func close() { if let tif { TIFFClose(tif) }; tif = nil }

    func corrupt(_ what: String) -> ImageError {
        .corrupt(format: "TIFF", detail: lastError.isEmpty ? what : "\(what): \(lastError)")
    }

    /// Calls `body(y, samples)` for each row top to bottom, from strips (a scanline at a time) or tiles
    /// (a row of tiles at a time), checking `stopCheck` every 64 rows.
    func forEachRow(width w: Int, height h: Int, stopCheck: ImageStopCheck,
                    _ body: (Int, UnsafePointer<UInt8>) -> Void) throws(ImageError) {
        let rowBytes = Int(TIFFScanlineSize64(tif))
        guard rowBytes > 0 else { throw corrupt("zero scanline size") }
        if TIFFIsTiled(tif) == 0 {
            var row = [UInt8](repeating: 0, count: rowBytes)
            for y in 0..<h {
                let rc = row.withUnsafeMutableBytes { TIFFReadScanline(tif, $0.baseAddress, UInt32(y), 0) }
                guard rc >= 0 else { throw corrupt("row \(y) does not decode") }
                row.withUnsafeBufferPointer { body(y, $0.baseAddress!) }
                if y & 63 == 63 { try stopCheck.check() }
            }
            return
        }
        var tw: UInt32 = 0, th: UInt32 = 0
        guard TIFFGetField_u32(tif, TIFFTAG_TILEWIDTH, &tw), TIFFGetField_u32(tif, TIFFTAG_TILELENGTH, &th), tw > 0, th > 0 else {
            throw corrupt("a tiled image without a tile size")
        }
        let tileBytes = Int(TIFFTileSize64(tif))
        let (tileW, tileH) = (Int(tw), Int(th))
        // A tile may be larger than the image, but not by so much that the tile buffer is what a
        // hostile header uses to allocate.
        guard tileBytes > 0, tileBytes / tileH > 0, tileBytes <= max(4 * rowBytes * h, 1 << 20) else {
            throw corrupt("\(tileW)x\(tileH) tiles for a \(w)x\(h) image")
        }
        let tileRowBytes = tileBytes / tileH          // bytes of one row of one tile
        var tile = [UInt8](repeating: 0, count: tileBytes)
        var band = [UInt8](repeating: 0, count: rowBytes * min(tileH, h))
        var y0 = 0
        while y0 < h {
            let rows = min(tileH, h - y0)
            var x0 = 0
            var xByte = 0
            while x0 < w {
                let rc = tile.withUnsafeMutableBytes { TIFFReadTile(tif, $0.baseAddress, UInt32(x0), UInt32(y0), 0, 0) }
                guard rc >= 0 else { throw corrupt("tile at (\(x0), \(y0)) does not decode") }
                let take = min(tileRowBytes, rowBytes - xByte)
                for r in 0..<rows {
                    band.withUnsafeMutableBufferPointer { b in
                        tile.withUnsafeBufferPointer { t in
                            (b.baseAddress! + r * rowBytes + xByte).update(from: t.baseAddress! + r * tileRowBytes, count: take)
                        }
                    }
                }
                x0 += tileW
                xByte += tileRowBytes
                try stopCheck.check()
            }
            band.withUnsafeBufferPointer { b in
                for r in 0..<rows { body(y0 + r, b.baseAddress! + r * rowBytes) }
            }
            y0 += rows
        }
    }
}

/// The bytes libtiff reads through its client callbacks.
private final class TIFFMemoryReader {
    let bytes: [UInt8]
    var offset = 0
    init(_ bytes: [UInt8]) { self.bytes = bytes }
}

private func tiffReader(_ h: thandle_t?) -> TIFFMemoryReader { Unmanaged<TIFFMemoryReader>.fromOpaque(h!).takeUnretainedValue() }

private let tiffRead: TIFFReadWriteProc = { h, buf, size in
    let r = tiffReader(h)
    let n = max(0, min(Int(size), r.bytes.count - r.offset))
    if n > 0, let buf { r.bytes.withUnsafeBytes { buf.copyMemory(from: $0.baseAddress! + r.offset, byteCount: n) } }
    r.offset += n
    return tmsize_t(n)
}
private let tiffWrite: TIFFReadWriteProc = { _, _, _ in 0 }
private let tiffSeek: TIFFSeekProc = { h, off, whence in
    let r = tiffReader(h)
    let base: Int
    switch whence {
    case SEEK_CUR: base = r.offset
    case SEEK_END: base = r.bytes.count
    default: base = 0
    }
    // toff_t is unsigned: a "negative" offset wraps; keep the arithmetic in that domain.
    let target = UInt64(base) &+ off
    guard target <= UInt64(Int.max) else { return toff_t.max }
    r.offset = Int(target)
    return toff_t(target)
}
private let tiffClose: TIFFCloseProc = { _ in 0 }
private let tiffSize: TIFFSizeProc = { h in toff_t(tiffReader(h).bytes.count) }
private let tiffMap: TIFFMapFileProc = { _, _, _ in 0 }
private let tiffUnmap: TIFFUnmapFileProc = { _, _, _ in }

/// libtiff's error handler: keeps the message on the `TIFFFile`, prints nothing.
private let tiffMessage: TIFFErrorHandlerExtR = { _, user, _, fmt, args in
    guard let user, let fmt, let args else { return 1 }
    var text = [CChar](repeating: 0, count: 256)
    _ = vsnprintf(&text, text.count, fmt, args)
    Unmanaged<TIFFFile>.fromOpaque(user).takeUnretainedValue().lastError = String(cString: text)
    return 1
}
/// libtiff's warnings (unknown tags and the like) are dropped.
private let tiffWarning: TIFFErrorHandlerExtR = { _, _, _, _, _ in 1 }
