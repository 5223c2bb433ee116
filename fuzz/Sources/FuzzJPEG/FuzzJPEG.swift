import BLIPEngine

/// ImageDecoder on JPEG bytes, EXIF orientation on. Invariants: no crash; a decoded image has
/// width × height × 3 bytes within the (fuzzing-sized) limits.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJPEG(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    // Small limits keep each run fast; the limit checks themselves are part of what is fuzzed.
    let limits = ImageLimits(maxBytes: 1 << 20, maxPixels: 1 << 20)
    guard let image = try? ImageDecoder.decode(bytes, format: .jpeg, applyEXIFOrientation: true, limits: limits) else { return 0 }
    precondition(image.width >= 1 && image.height >= 1 && image.width * image.height <= limits.maxPixels)
    precondition(image.pixels.count == image.width * image.height * 3)
    return 0
}
