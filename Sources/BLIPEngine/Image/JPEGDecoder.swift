import CTurboJPEG

/// Decodes JPEG with TurboJPEG's 2.x `tj*` API, reproducing Pillow's result.
///
/// Pillow drives the same libjpeg-turbo with library defaults: accurate integer IDCT
/// (`JDCT_ISLOW`) and fancy (triangle) chroma upsampling, which is what `tjDecompress2` does
/// with `TJFLAG_ACCURATEDCT` and without `TJFLAG_FASTUPSAMPLE`.
///
/// Hostile files: the scans are counted before decoding (``ImageLimits/maxScans``), and
/// `TJFLAG_STOPONWARNING` stops at libjpeg's first warning (corrupt or truncated entropy data, a
/// bogus progression). libjpeg-turbo 2.1's `tjDecompress2` already failed any image that raised a
/// warning, after decoding all of it; the flag only makes it fail sooner, so the images accepted
/// are exactly those accepted before. Pillow is more lenient (it ignores warnings and decodes what
/// it can, failing only on truncation unless `LOAD_TRUNCATED_IMAGES`): such images are refused
/// here, never decoded differently. `TJFLAG_LIMITSCANS` (500 scans) stays as a second guard.
enum JPEGDecoder {
    /// What the header says, read before any pixel buffer is allocated.
    struct Header {
        var width: Int
        var height: Int
        var colorspace: Int32
    }

    static func decode(_ bytes: [UInt8], limits: ImageLimits) throws(ImageError) -> RGBImage {
        let handle = try TurboJPEGDecompressor()
        let header = try handle.header(of: bytes)
        try limits.check(width: header.width, height: header.height)
        if let scans = JPEGScanCounter.scans(in: bytes), scans > limits.maxScans {
            throw .tooManyScans(count: scans, limit: limits.maxScans)
        }
        let (w, h) = (header.width, header.height)

        switch header.colorspace {
        case Int32(TJCS_CMYK.rawValue), Int32(TJCS_YCCK.rawValue):
            // Pillow opens every 4-component JPEG as mode CMYK with Adobe's inverted polarity
            // ("CMYK;I"), libjpeg converting YCCK to CMYK, then `convert("RGB")` uses cmyk2rgb.
            // Converted in place (pixel i's RGB lands at 3i, at or before its CMYK at 4i, which
            // has been read by then): one 4-byte-per-pixel buffer, never a second copy.
            var pixels = [UInt8](repeating: 0, count: w * h * 4)
            try handle.decompress(bytes, into: &pixels, width: w, height: h, pixelFormat: TJPF_CMYK, bytesPerPixel: 4)
            pixels.withUnsafeMutableBufferPointer { buf in
                let p = buf.baseAddress!
                for i in 0..<(w * h) {
                    let s = p + 4 * i
                    PillowPixelMath.rgbFromJPEGCMYK(s[0], s[1], s[2], s[3], into: p + 3 * i)
                }
            }
            pixels.removeLast(w * h)  // keeps the capacity: no reallocation, no copy
            return RGBImage(width: w, height: h, pixels: pixels)
        default:
            // Grayscale comes out replicated into R, G and B, as Pillow's L → RGB does.
            var rgb = [UInt8](repeating: 0, count: w * h * 3)
            try handle.decompress(bytes, into: &rgb, width: w, height: h, pixelFormat: TJPF_RGB, bytesPerPixel: 3)
            return RGBImage(width: w, height: h, pixels: rgb)
        }
    }
}

/// Owns one TurboJPEG decompressor handle and frees it.
final class TurboJPEGDecompressor {
    private let handle: tjhandle

    init() throws(ImageError) {
        guard let h = tjInitDecompress() else {
            throw .unsupported(format: "JPEG", detail: "tjInitDecompress failed")
        }
        handle = h
    }

    deinit { tjDestroy(handle) }

    func header(of bytes: [UInt8]) throws(ImageError) -> JPEGDecoder.Header {
        var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
        let rc = bytes.withUnsafeBufferPointer { buf in
            tjDecompressHeader3(handle, buf.baseAddress, UInt(buf.count), &width, &height, &subsampling, &colorspace)
        }
        guard rc == 0 else { throw .corrupt(format: "JPEG", detail: lastError()) }
        return .init(width: Int(width), height: Int(height), colorspace: colorspace)
    }

    func decompress(_ bytes: [UInt8], into output: inout [UInt8], width: Int, height: Int,
                    pixelFormat: TJPF, bytesPerPixel: Int) throws(ImageError) {
        let flags = TJFLAG_ACCURATEDCT | TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS
        let rc = bytes.withUnsafeBufferPointer { src in
            output.withUnsafeMutableBufferPointer { dst in
                tjDecompress2(handle, src.baseAddress, UInt(src.count), dst.baseAddress,
                              Int32(width), Int32(width * bytesPerPixel), Int32(height),
                              Int32(pixelFormat.rawValue), flags)
            }
        }
        // libjpeg-turbo 2.1 reports a truncated stream as a "warning" yet returns -1 and leaves
        // the missing rows unwritten; the return value is what decides.
        guard rc == 0 else { throw .corrupt(format: "JPEG", detail: lastError()) }
    }

    private func lastError() -> String {
        guard let msg = tjGetErrorStr2(handle) else { return "unknown TurboJPEG error" }
        return String(cString: msg)
    }
}
