import Foundation
@testable import BLIPEngine

/// The `pytorch_model.bin` reader: the zip directory (`ZipArchive`) and the restricted pickle
/// machine (`StateDictPickle`), internal, reached through @testable. Input: one mode byte, then
/// the bytes. Even mode: the bytes are a data.pkl, given to the pickle machine alone (a zip's CRC
/// would stop most mutations of a pickle inside an archive). Odd mode: the bytes are a whole
/// checkpoint file for `TorchCheckpoint.parse`. Invariants: no crash, no hang; every tensor's byte
/// range lies inside the file and holds exactly its shape's elements.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCheckpoint(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    if data[0] & 1 == 0 {
        guard let read = try? StateDictPickle(bytes, path: "fuzz") else { return 0 }
        for (_, tensor) in read.tensors {
            precondition(tensor.shape.count == tensor.strides.count)
        }
        return 0
    }
    guard let parsed = try? TorchCheckpoint.parse(ArrayByteSource(bytes: bytes, path: "fuzz"), path: "fuzz") else { return 0 }
    for entry in parsed.entries.values {
        precondition(entry.range.lowerBound >= 0 && entry.range.upperBound <= bytes.count, "\(entry)")
        precondition(entry.range.count == entry.elementCount * entry.dtype.byteSize, "\(entry)")
    }
    return 0
}
