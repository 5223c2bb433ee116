import CSPNG

/// Decodes PNG with libspng, then flattens it exactly as Pillow + transformers' `convert_to_rgb`
/// do: an image with alpha (or a `tRNS` chunk) becomes RGBA and is alpha-composited over opaque
/// white; anything else is converted straight to RGB.
///
/// Pillow quirks reproduced here (checked against Pillow 13):
/// - 16-bit RGB/RGBA/gray+alpha keep the high byte of each sample ("RGB;16B").
/// - 16-bit gray opens as mode "I;16" and converts to RGB by clipping to 255, not by shifting.
/// - A gray `tRNS` value is compared with the 8-bit *scaled* gray of 2- and 4-bit images, and a
///   16-bit RGB `tRNS` triple with the high bytes, so in those cases it rarely matches anything.
enum PNGDecoder {
    static func decode(_ bytes: [UInt8], limits: ImageLimits,
                       stopCheck: ImageStopCheck = .none) throws(ImageError) -> (RGBImage, orientation: Int?) {
        let ctx = try SPNGContext()
        return try bytes.withUnsafeBufferPointer { (buf) throws(ImageError) in
            try ctx.check(spng_set_png_buffer(ctx.ctx, buf.baseAddress, buf.count))
            // Refuse absurd dimensions inside libspng too, and cap ancillary chunk memory.
            let dimLimit = UInt32(min(limits.maxPixels, Int(Int32.max)))
            _ = spng_set_image_limits(ctx.ctx, dimLimit, dimLimit)
            let chunkLimit = min(max(limits.maxBytes, 1 << 20), Int(Int32.max))
            _ = spng_set_chunk_limits(ctx.ctx, chunkLimit, chunkLimit)

            var ihdr = spng_ihdr()
            let rc = spng_get_ihdr(ctx.ctx, &ihdr)
            if rc == Int32(SPNG_EUSER_WIDTH.rawValue) || rc == Int32(SPNG_EUSER_HEIGHT.rawValue),
               buf.count >= 24 {
                // libspng stopped on our own limit; report the header's size.
                throw .tooManyPixels(width: Int(bigEndian32(buf, 16)), height: Int(bigEndian32(buf, 20)),
                                     limit: limits.maxPixels)
            }
            try ctx.check(rc)
            let (w, h) = (Int(ihdr.width), Int(ihdr.height))
            try limits.check(width: w, height: h)

            let colorType = Int(ihdr.color_type)
            let bitDepth = Int(ihdr.bit_depth)
            // Rows are decoded one at a time into a one-row buffer and flattened straight into the
            // RGB8 output, so the only image-sized buffer is the result (3 bytes per pixel).
            var rgb = [UInt8](repeating: 0, count: w * h * 3)
            let interlaced = ihdr.interlace_method != 0
            if bitDepth == 16 {
                var row = [UInt16](repeating: 0, count: w * 4)
                let trns = ctx.transparency()
                try ctx.decodeRows(into: &row, format: SPNG_FMT_RGBA16, flags: 0, rowBytes: w * 8, stopCheck: stopCheck) { y, pass, s in
                    rgb.withUnsafeMutableBufferPointer { d in
                        flatten16(s, colorType: colorType, trns: trns, into: d.baseAddress! + 3 * w * y,
                                  columns: Self.columns(width: w, pass: interlaced ? pass : nil))
                    }
                }
            } else {
                // Palette transparency is applied by libspng; gray/RGB tRNS follow Pillow's rules below.
                let flags = colorType == 3 ? Int32(SPNG_DECODE_TRNS.rawValue) : 0
                var row = [UInt8](repeating: 0, count: w * 4)
                let trns = ctx.transparency()
                try ctx.decodeRows(into: &row, format: SPNG_FMT_RGBA8, flags: flags, rowBytes: w * 4, stopCheck: stopCheck) { y, pass, s in
                    rgb.withUnsafeMutableBufferPointer { d in
                        flatten8(s, colorType: colorType, bitDepth: bitDepth, trns: trns, into: d.baseAddress! + 3 * w * y,
                                 columns: Self.columns(width: w, pass: interlaced ? pass : nil))
                    }
                }
            }
            return (RGBImage(width: w, height: h, pixels: rgb), ctx.exifOrientation())
        }
    }

    /// The columns of a row that one decoded scanline fills: all of them, or those of Adam7 pass `pass`.
    static func columns(width: Int, pass: Int?) -> StrideTo<Int> {
        guard let pass else { return stride(from: 0, to: width, by: 1) }
        let start = [0, 4, 0, 2, 0, 1, 0][pass], step = [8, 8, 4, 4, 2, 2, 1][pass]
        return stride(from: start, to: width, by: step)
    }

    private static func bigEndian32(_ b: UnsafeBufferPointer<UInt8>, _ i: Int) -> UInt32 {
        UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3])
    }

    /// One row of RGBA8 samples `s` (full width) → RGB8 `d`, at `columns`.
    private static func flatten8(_ s: UnsafePointer<UInt8>, colorType: Int, bitDepth: Int, trns: spng_trns?,
                                 into d: UnsafeMutablePointer<UInt8>, columns: StrideTo<Int>) {
        switch colorType {
        case 4, 6:
            compositeOverWhite(s, d, columns: columns)
        case 3 where trns != nil:
            compositeOverWhite(s, d, columns: columns)
        case 0 where trns != nil:
            let key = Int(trns!.gray)
            for i in columns {
                let g = s[4 * i]
                // Pillow holds 1-bit gray as 0/255 but keeps the raw tRNS sample (0/1) mapped
                // to 0/255; 2/4-bit gray is scaled to 0...255 and compared with the raw value.
                let sample = bitDepth == 1 ? (g == 255 ? 1 : 0) : Int(g)
                let v: UInt8 = sample == key ? 255 : g
                d[3 * i] = v; d[3 * i + 1] = v; d[3 * i + 2] = v
            }
        case 2 where trns != nil:
            let (kr, kg, kb) = (Int(trns!.red), Int(trns!.green), Int(trns!.blue))
            for i in columns {
                let transparent = Int(s[4 * i]) == kr && Int(s[4 * i + 1]) == kg && Int(s[4 * i + 2]) == kb
                for c in 0..<3 { d[3 * i + c] = transparent ? 255 : s[4 * i + c] }
            }
        default:
            for i in columns {
                d[3 * i] = s[4 * i]; d[3 * i + 1] = s[4 * i + 1]; d[3 * i + 2] = s[4 * i + 2]
            }
        }
    }

    private static func compositeOverWhite(_ s: UnsafePointer<UInt8>, _ d: UnsafeMutablePointer<UInt8>, columns: StrideTo<Int>) {
        for i in columns {
            let a = s[4 * i + 3]
            for c in 0..<3 { d[3 * i + c] = PillowPixelMath.overWhite(s[4 * i + c], alpha: a) }
        }
    }

    /// One row of RGBA16 samples `s` (full width) → RGB8 `d`, at `columns`.
    private static func flatten16(_ s: UnsafePointer<UInt16>, colorType: Int, trns: spng_trns?,
                                  into d: UnsafeMutablePointer<UInt8>, columns: StrideTo<Int>) {
        @inline(__always) func high(_ v: UInt16) -> UInt8 { UInt8(truncatingIfNeeded: v >> 8) }
        switch colorType {
        case 0:
            // Mode "I;16": clip to 255; a tRNS match turns the pixel white.
            let key: Int? = trns.map { Int($0.gray) }
            for i in columns {
                let g = s[4 * i]
                let v: UInt8 = Int(g) == key ? 255 : UInt8(min(g, 255))
                d[3 * i] = v; d[3 * i + 1] = v; d[3 * i + 2] = v
            }
        case 2:
            let key: (Int, Int, Int)? = trns.map { (Int($0.red), Int($0.green), Int($0.blue)) }
            for i in columns {
                let (r, g, b) = (high(s[4 * i]), high(s[4 * i + 1]), high(s[4 * i + 2]))
                let transparent = key.map { Int(r) == $0.0 && Int(g) == $0.1 && Int(b) == $0.2 } ?? false
                d[3 * i] = transparent ? 255 : r
                d[3 * i + 1] = transparent ? 255 : g
                d[3 * i + 2] = transparent ? 255 : b
            }
        default:
            for i in columns {
                let a = high(s[4 * i + 3])
                for c in 0..<3 { d[3 * i + c] = PillowPixelMath.overWhite(high(s[4 * i + c]), alpha: a) }
            }
        }
    }
}

/// Owns one libspng decoding context and frees it.
final class SPNGContext {
    let ctx: OpaquePointer

    init() throws(ImageError) {
        guard let c = spng_ctx_new(0) else {
            throw .unsupported(format: "PNG", detail: "spng_ctx_new failed")
        }
        ctx = c
    }

    deinit { spng_ctx_free(ctx) }

    func check(_ rc: Int32) throws(ImageError) {
        guard rc == 0 else { throw .corrupt(format: "PNG", detail: String(cString: spng_strerror(rc))) }
    }

    /// Decodes the image one scanline at a time into `row` (`rowBytes`, one full-width row of
    /// `format`), calling `body(imageRow, pass, row)` after each; an interlaced image comes as its
    /// seven Adam7 passes, each scanline filling only that pass's columns of `row`. `stopCheck`
    /// (deadline, cancellation) is checked every 4096 scanlines.
    func decodeRows<T: FixedWidthInteger>(into row: inout [T], format: spng_format, flags: Int32, rowBytes: Int,
                                          stopCheck: ImageStopCheck,
                                          _ body: (Int, Int, UnsafePointer<T>) -> Void) throws(ImageError) {
        try check(spng_decode_image(ctx, nil, 0, Int32(format.rawValue), flags | Int32(SPNG_DECODE_PROGRESSIVE.rawValue)))
        var scanlines = 0
        while true {
            var info = spng_row_info()
            try check(spng_get_row_info(ctx, &info))
            let rc = row.withUnsafeMutableBytes { raw in spng_decode_row(ctx, raw.baseAddress, rowBytes) }
            guard rc == 0 || rc == Int32(SPNG_EOI.rawValue) else { try check(rc); return }
            row.withUnsafeBufferPointer { body(Int(info.row_num), Int(info.pass), $0.baseAddress!) }
            if rc == Int32(SPNG_EOI.rawValue) { return }
            scanlines += 1
            if scanlines & 4095 == 0 { try stopCheck.check() }
        }
    }

    /// The `tRNS` chunk, if the file has one.
    func transparency() -> spng_trns? {
        var t = spng_trns()
        return spng_get_trns(ctx, &t) == 0 ? t : nil
    }

    /// Orientation from an `eXIf` chunk (Pillow's `exif_transpose` honours it for PNG too).
    func exifOrientation() -> Int? {
        var exif = spng_exif()
        guard spng_get_exif(ctx, &exif) == 0, let data = exif.data, exif.length > 0 else { return nil }
        let buf = UnsafeRawBufferPointer(start: data, count: exif.length).bindMemory(to: UInt8.self)
        return EXIFOrientation.fromTIFF(buf)
    }
}
