import CGIF

/// Decodes the first frame of a GIF with giflib's low-level reader (the frame's rows, never the
/// whole animation), reproducing what Pillow 13 shows for it.
///
/// Pillow's first frame (GifImagePlugin, `LOADING_STRATEGY` RGB_AFTER_FIRST):
/// - The image is the logical screen, grown to cover the frame if the frame reaches past it. Pixels
///   outside the frame hold the frame's transparent index when it has one, else index 0.
/// - Palette: the frame's local table, else the global one. A table that is the identity grey ramp
///   (entry i is (i, i, i)), or no table at all, makes the image mode L: each index is its own grey.
///   Otherwise mode P, where an index past the table's end is black (Pillow's palette is zeroed).
/// - A graphic control extension's transparent index (the last one before the frame) makes the
///   image transparent there; transformers composites it over white, so those pixels are white.
/// Only the frame's rows are held (one row buffer), plus the RGB result: 3 bytes per pixel.
enum GIFDecoder {
    static func decode(_ bytes: [UInt8], limits: ImageLimits, stopCheck: ImageStopCheck = .none) throws(ImageError) -> RGBImage {
        try bytes.withUnsafeBufferPointer { (buf) throws(ImageError) in
            let reader = GIFReader(buf)
            var error: Int32 = 0
            let opened = withExtendedLifetime(reader) {
                DGifOpen(Unmanaged.passUnretained(reader).toOpaque(), gifRead, &error)
            }
            guard let gif = opened else { throw corrupt(error) }
            defer { var e: Int32 = 0; DGifCloseFile(gif, &e) }
            return try withExtendedLifetime(reader) { () throws(ImageError) in
                try decodeFirstFrame(gif, limits: limits, stopCheck: stopCheck)
            }
        }
    }

    private static func decodeFirstFrame(_ gif: UnsafeMutablePointer<GifFileType>, limits: ImageLimits,
                                         stopCheck: ImageStopCheck) throws(ImageError) -> RGBImage {
        var transparency: Int? = nil
        while true {
            var record = UNDEFINED_RECORD_TYPE
            guard DGifGetRecordType(gif, &record) == GIF_OK else { throw corrupt(gif.pointee.Error) }
            switch record {
            case EXTENSION_RECORD_TYPE:
                var code: Int32 = 0
                var block: UnsafeMutablePointer<GifByteType>? = nil
                guard DGifGetExtension(gif, &code, &block) == GIF_OK else { throw corrupt(gif.pointee.Error) }
                // A graphic control extension: length byte, flags, delay (2), transparent index.
                if code == GRAPHICS_EXT_FUNC_CODE, let b = block, b[0] >= 4, b[1] & 1 != 0 {
                    transparency = Int(b[4])
                }
                while block != nil {
                    guard DGifGetExtensionNext(gif, &block) == GIF_OK else { throw corrupt(gif.pointee.Error) }
                }
            case IMAGE_DESC_RECORD_TYPE:
                guard DGifGetImageDesc(gif) == GIF_OK else { throw corrupt(gif.pointee.Error) }
                return try decodeFrame(gif, transparency: transparency, limits: limits, stopCheck: stopCheck)
            case TERMINATE_RECORD_TYPE:
                throw .corrupt(format: "GIF", detail: "the file ends before its first frame")
            default:
                throw .corrupt(format: "GIF", detail: "unknown record")
            }
        }
    }

    private static func decodeFrame(_ gif: UnsafeMutablePointer<GifFileType>, transparency: Int?,
                                    limits: ImageLimits, stopCheck: ImageStopCheck) throws(ImageError) -> RGBImage {
        let desc = gif.pointee.Image
        let (x0, y0, fw, fh) = (Int(desc.Left), Int(desc.Top), Int(desc.Width), Int(desc.Height))
        let w = max(Int(gif.pointee.SWidth), x0 + fw), h = max(Int(gif.pointee.SHeight), y0 + fh)
        try limits.check(width: w, height: h)
        guard fw > 0, fh > 0 else { throw .corrupt(format: "GIF", detail: "the first frame is \(fw)x\(fh)") }

        // Index → RGB, 256 entries, and which index is transparent (white after compositing).
        var lut = [UInt8](repeating: 0, count: 256 * 3)
        if let map = desc.ColorMap ?? gif.pointee.SColorMap, let colors = map.pointee.Colors,
           isPaletteNeeded(colors, count: Int(map.pointee.ColorCount)) {
            for i in 0..<min(Int(map.pointee.ColorCount), 256) {
                lut[3 * i] = colors[i].Red; lut[3 * i + 1] = colors[i].Green; lut[3 * i + 2] = colors[i].Blue
            }
        } else {
            for i in 0..<256 { lut[3 * i] = UInt8(i); lut[3 * i + 1] = UInt8(i); lut[3 * i + 2] = UInt8(i) }
        }
        if let t = transparency { lut[3 * t] = 255; lut[3 * t + 1] = 255; lut[3 * t + 2] = 255 }

        var rgb = [UInt8](repeating: 0, count: w * h * 3)
        let fill = transparency ?? 0
        var row = [GifPixelType](repeating: UInt8(fill), count: fw)
        try rgb.withUnsafeMutableBufferPointer { (d) throws(ImageError) in
            // The background: the transparent index, else index 0.
            for i in 0..<(w * h) { for c in 0..<3 { d[3 * i + c] = lut[3 * fill + c] } }
            for n in 0..<fh {
                let got = row.withUnsafeMutableBufferPointer { DGifGetLine(gif, $0.baseAddress, Int32(fw)) }
                guard got == GIF_OK else { throw corrupt(gif.pointee.Error) }
                let y = y0 + (desc.Interlace ? interlacedRow(n, height: fh) : n)
                let out = d.baseAddress! + 3 * (y * w + x0)
                for x in 0..<fw {
                    let i = 3 * Int(row[x])
                    out[3 * x] = lut[i]; out[3 * x + 1] = lut[i + 1]; out[3 * x + 2] = lut[i + 2]
                }
                if n & 63 == 63 { try stopCheck.check() }
            }
        }
        return RGBImage(width: w, height: h, pixels: rgb)
    }

    /// Pillow's `_is_palette_needed`: false when entry i is (i, i, i) for every entry.
    private static func isPaletteNeeded(_ colors: UnsafeMutablePointer<GifColorType>, count: Int) -> Bool {
        (0..<count).contains { i in
            let c = colors[i]
            return !(Int(c.Red) == i && Int(c.Green) == i && Int(c.Blue) == i)
        }
    }

    /// The frame row the `n`th stored row of an interlaced frame belongs to (passes: every 8th row
    /// from 0, every 8th from 4, every 4th from 2, every 2nd from 1).
    static func interlacedRow(_ n: Int, height h: Int) -> Int {
        let pass1 = (h + 7) / 8, pass2 = (h + 3) / 8, pass3 = (h + 1) / 4
        if n < pass1 { return 8 * n }
        if n < pass1 + pass2 { return 8 * (n - pass1) + 4 }
        if n < pass1 + pass2 + pass3 { return 4 * (n - pass1 - pass2) + 2 }
        return 2 * (n - pass1 - pass2 - pass3) + 1
    }

    private static func corrupt(_ code: Int32) -> ImageError {
        let text = GifErrorString(code).map { String(cString: $0) } ?? "giflib error \(code)"
        return .corrupt(format: "GIF", detail: text)
    }
}

/// The bytes giflib reads through its input callback.
private final class GIFReader {
    let bytes: UnsafeBufferPointer<UInt8>
    var offset = 0
    init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }
}

/// giflib's input callback: copies up to `count` bytes; fewer at the end of the data.
private let gifRead: InputFunc = { gif, out, count in
    guard let gif, let out, count > 0, let user = gif.pointee.UserData else { return 0 }
    let reader = Unmanaged<GIFReader>.fromOpaque(user).takeUnretainedValue()
    let n = min(Int(count), reader.bytes.count - reader.offset)
    guard n > 0 else { return 0 }
    out.update(from: reader.bytes.baseAddress! + reader.offset, count: n)
    reader.offset += n
    return Int32(n)
}
