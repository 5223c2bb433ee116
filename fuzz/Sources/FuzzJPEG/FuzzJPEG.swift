import BLIPEngine

/// ImageDecoder on JPEG bytes, EXIF orientation on. Invariants: no crash; a decoded image has
/// width × height × 3 bytes within the limits, and resizes to 384×384 as the engine does.
///
/// The daemon's own limits (178,956,970 pixels since issue 22, 100 JPEG scans): with `-timeout` and `-rss_limit_mb`
/// (scripts/fuzz.sh) this finds inputs that cost time or memory out of proportion (issue 13's
/// scan bomb and 1 × 40,000,000 PNG would trip them), not only crashes.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJPEG(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let limits = ImageLimits.default
    guard let image = try? ImageDecoder.decode(bytes, format: .jpeg, applyEXIFOrientation: true, limits: limits) else { return 0 }
    precondition(image.width >= 1 && image.height >= 1 && image.width * image.height <= limits.maxPixels)
    precondition(image.pixels.count == image.width * image.height * 3)
    let resized = BicubicResize.resize(image, width: 384, height: 384)
    precondition(resized.pixels.count == 384 * 384 * 3)
    return 0
}
