import Foundation
@testable import BLIPEngine

/// The safetensors header parser (`SafeTensorsFile.parseHeader`, internal: reached through
/// @testable, which SwiftPM debug builds allow). Input: 4 bytes of data-section length, then the
/// JSON header. Invariant: no crash; every entry's byte range lies inside the data section and
/// matches its shape and dtype.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafeTensors(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 4 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let dataLength = bytes[0..<4].reduce(0) { $0 << 8 | Int($1) }
    guard let parsed = try? SafeTensorsFile.parseHeader(Data(bytes[4...]), dataLength: dataLength, path: "fuzz") else { return 0 }
    for entry in parsed.entries.values {
        precondition(entry.range.lowerBound >= 0 && entry.range.upperBound <= dataLength, "\(entry)")
    }
    return 0
}
