@testable import BLIPEngine

/// The EXIF reader alone (JPEG APP1 scan, then the TIFF IFD walk). Invariant: no crash; an
/// orientation found is one of the eight EXIF values or something the caller ignores.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEXIF(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    _ = EXIFOrientation.fromJPEG(bytes)
    _ = bytes.withUnsafeBufferPointer { EXIFOrientation.fromTIFF($0) }
    return 0
}
