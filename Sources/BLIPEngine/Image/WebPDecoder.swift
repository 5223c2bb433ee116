import CWebP

/// Decodes WebP (lossy, lossless, with alpha; of an animation the first frame) with libwebp,
/// reproducing Pillow 13.
///
/// Pillow reads every WebP through `WebPAnimDecoder` in RGBA: the canvas starts transparent black
/// and the first frame (a key frame) is decoded straight into it at its offset, with libwebp's
/// defaults (fancy upsampling, no dithering). The image is mode RGBA when `WebPGetFeatures` says the
/// file has alpha, else RGBX (alpha ignored); transformers composites RGBA over white. This decoder
/// does the same with the demuxer and libwebp's incremental decoder, so the file is fed in slices
/// with the deadline checked between them, and the only image-sized buffers are the RGBA canvas
/// (4 bytes per pixel) and the RGB result (3).
enum WebPDecoder {
    /// Bytes handed to the incremental decoder between deadline checks (a lossless decoder resumes
    /// a row it could not finish, so small slices cost time: 1 MiB keeps that under a few percent).
    static let sliceBytes = 1 << 20

    static func decode(_ bytes: [UInt8], limits: ImageLimits,
                       stopCheck: ImageStopCheck = .none) throws(ImageError) -> (RGBImage, orientation: Int?) {
        try bytes.withUnsafeBufferPointer { (buf) throws(ImageError) in
            var data = WebPData(bytes: buf.baseAddress, size: buf.count)
            guard let demux = WebPDemux(&data) else {
                throw .corrupt(format: "WebP", detail: "the RIFF container or the frame headers do not parse")
            }
            defer { WebPDemuxDelete(demux) }
            let (w, h) = (Int(WebPDemuxGetI(demux, WEBP_FF_CANVAS_WIDTH)), Int(WebPDemuxGetI(demux, WEBP_FF_CANVAS_HEIGHT)))
            try limits.check(width: w, height: h)

            var features = WebPBitstreamFeatures()
            guard WebPGetFeatures(buf.baseAddress, buf.count, &features) == VP8_STATUS_OK else {
                throw .corrupt(format: "WebP", detail: "the bitstream header does not parse")
            }
            var frame = WebPIterator()
            guard WebPDemuxGetFrame(demux, 1, &frame) != 0 else {
                throw .corrupt(format: "WebP", detail: "the file holds no frame")
            }
            defer { WebPDemuxReleaseIterator(&frame) }
            let (fx, fy, fw, fh) = (Int(frame.x_offset), Int(frame.y_offset), Int(frame.width), Int(frame.height))
            guard fx >= 0, fy >= 0, fw > 0, fh > 0, fx + fw <= w, fy + fh <= h else {
                throw .corrupt(format: "WebP", detail: "the first frame \(fw)x\(fh)+\(fx)+\(fy) lies outside the \(w)x\(h) canvas")
            }

            var canvas = [UInt8](repeating: 0, count: w * h * 4)
            try canvas.withUnsafeMutableBufferPointer { (c) throws(ImageError) in
                try decodeFrame(frame.fragment, into: c.baseAddress! + (fy * w + fx) * 4, stride: w * 4,
                                size: ((fh - 1) * w + fw) * 4, stopCheck: stopCheck)
            }

            // RGBA → RGB over white in place (pixel i's RGB lands at 3i, before its RGBA at 4i, which
            // is read first): the canvas is the image, never a second full-size copy.
            let hasAlpha = features.has_alpha != 0
            canvas.withUnsafeMutableBufferPointer { buf in
                let p = buf.baseAddress!
                for i in 0..<(w * h) {
                    let (r, g, b, a) = (p[4 * i], p[4 * i + 1], p[4 * i + 2], hasAlpha ? p[4 * i + 3] : 255)
                    p[3 * i] = PillowPixelMath.overWhite(r, alpha: a)
                    p[3 * i + 1] = PillowPixelMath.overWhite(g, alpha: a)
                    p[3 * i + 2] = PillowPixelMath.overWhite(b, alpha: a)
                }
            }
            canvas.removeLast(w * h)  // keeps the capacity: no reallocation, no copy
            return (RGBImage(width: w, height: h, pixels: canvas), exifOrientation(demux))
        }
    }

    /// Decodes one frame's bitstream (`ALPH` + `VP8 `, or `VP8L`) as RGBA into `out` (`stride` bytes
    /// a row), handing the incremental decoder ``sliceBytes`` more each time.
    private static func decodeFrame(_ fragment: WebPData, into out: UnsafeMutablePointer<UInt8>, stride: Int, size: Int,
                                    stopCheck: ImageStopCheck) throws(ImageError) {
        var buffer = WebPDecBuffer()
        guard WebPInitDecBuffer(&buffer) != 0 else { throw .unsupported(format: "WebP", detail: "libwebp version mismatch") }
        buffer.colorspace = MODE_RGBA
        buffer.is_external_memory = 1
        buffer.u.RGBA = WebPRGBABuffer(rgba: out, stride: Int32(stride), size: size)
        guard let idec = WebPINewDecoder(&buffer) else {
            throw .unsupported(format: "WebP", detail: "WebPINewDecoder failed")
        }
        defer { WebPIDelete(idec) }
        guard let start = fragment.bytes else { throw .corrupt(format: "WebP", detail: "empty frame") }
        var offset = 0
        while true {
            // WebPIUpdate reads the caller's buffer (WebPIAppend would copy the whole file again).
            offset += min(sliceBytes, fragment.size - offset)
            let status = WebPIUpdate(idec, start, offset)
            switch status {
            case VP8_STATUS_OK:
                return
            case VP8_STATUS_SUSPENDED where offset < fragment.size:
                try stopCheck.check()
            case VP8_STATUS_SUSPENDED:
                throw .corrupt(format: "WebP", detail: "the bitstream ends early")
            default:
                throw .corrupt(format: "WebP", detail: "libwebp status \(status.rawValue)")
            }
        }
    }

    /// Orientation from the `EXIF` chunk (with or without the JPEG-style "Exif\0\0" prefix, as Pillow reads it).
    private static func exifOrientation(_ demux: OpaquePointer) -> Int? {
        var chunk = WebPChunkIterator()
        guard WebPDemuxGetChunk(demux, "EXIF", 1, &chunk) != 0 else { return nil }
        defer { WebPDemuxReleaseChunkIterator(&chunk) }
        guard let p = chunk.chunk.bytes, chunk.chunk.size > 0 else { return nil }
        var exif = UnsafeBufferPointer(start: p, count: chunk.chunk.size)
        if exif.count >= 6, exif.prefix(6).elementsEqual([0x45, 0x78, 0x69, 0x66, 0, 0]) {
            exif = UnsafeBufferPointer(rebasing: exif[6...])
        }
        return EXIFOrientation.fromTIFF(exif)
    }
}
