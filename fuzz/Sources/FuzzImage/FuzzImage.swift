import BLIPEngine

/// ImageDecoder on any bytes, the format sniffed from them (issue 22's WebP, GIF, BMP, TIFF, HEIC and
/// AVIF decoders, and the sniffing that picks one), EXIF orientation on. Invariants as FuzzPNG: no
/// crash; a decoded image has width × height × 3 bytes within the limits and resizes to 384×384.
/// Seeds: the fixtures of Tests/Fixtures/image-formats (scripts/reference/make_image_format_fixtures.py).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzImage(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let limits = ImageLimits.default
    guard let image = try? ImageDecoder.decode(bytes, applyEXIFOrientation: true, limits: limits) else { return 0 }
    precondition(image.width >= 1 && image.height >= 1 && image.width * image.height <= limits.maxPixels)
    precondition(image.pixels.count == image.width * image.height * 3)
    let resized = BicubicResize.resize(image, width: 384, height: 384)
    precondition(resized.pixels.count == 384 * 384 * 3)
    return 0
}
