import BLIPTestSupport
import Foundation
@testable import BLIPEngine

/// Test-only helpers: fixture paths, a tiny safetensors reader, and element-wise comparison.
enum ImageFixtures {
    static let root = PackagePaths.fixtures
    static let unit = root.appendingPathComponent("image-unit")
    static let images = root.appendingPathComponent("images")
    static let golden = root.appendingPathComponent("golden/images")

    static func bytes(_ url: URL) throws -> [UInt8] { [UInt8](try Data(contentsOf: url)) }

    /// Files in `dir` with one of `extensions`, sorted; empty when the directory is absent.
    static func files(in dir: URL, extensions: Set<String>) -> [URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.sorted().map { dir.appendingPathComponent($0) }
            .filter { extensions.contains($0.pathExtension.lowercased()) }
    }

    /// The input the Python generator builds with `pattern(w, h, seed)`.
    static func pattern(width w: Int, height h: Int, seed: Int) -> RGBImage {
        var px = [UInt8](repeating: 0, count: w * h * 3)
        for y in 0..<h { for x in 0..<w { for c in 0..<3 {
            px[(y * w + x) * 3 + c] = UInt8(truncatingIfNeeded: ((x * 7 + y * 13 + c * 101 + seed) * 2654435761) >> 13)
        } } }
        return RGBImage(width: w, height: h, pixels: px)
    }
}

/// Minimal safetensors reader: u64 LE header length, JSON header of
/// `{name: {dtype, shape, data_offsets}}`, then the data.
struct ImageTestSafeTensors {
    struct Tensor { var dtype: String; var shape: [Int]; var bytes: ArraySlice<UInt8> }
    var tensors: [String: Tensor] = [:]

    init(_ url: URL) throws {
        let data = try ImageFixtures.bytes(url)
        guard data.count >= 8 else { throw CocoaError(.fileReadCorruptFile) }
        var n = 0
        for i in 0..<8 { n |= Int(data[i]) << (8 * i) }
        guard 8 + n <= data.count,
              let json = try JSONSerialization.jsonObject(with: Data(data[8..<(8 + n)])) as? [String: Any]
        else { throw CocoaError(.fileReadCorruptFile) }
        for (name, value) in json where name != "__metadata__" {
            guard let d = value as? [String: Any], let dtype = d["dtype"] as? String,
                  let shape = d["shape"] as? [Int], let off = d["data_offsets"] as? [Int], off.count == 2
            else { throw CocoaError(.fileReadCorruptFile) }
            tensors[name] = Tensor(dtype: dtype, shape: shape, bytes: data[(8 + n + off[0])..<(8 + n + off[1])])
        }
    }

    /// A `(H, W, 3)` uint8 tensor as an image.
    func image(_ name: String) -> RGBImage? {
        guard let t = tensors[name], t.dtype == "U8", t.shape.count == 3, t.shape[2] == 3 else { return nil }
        return RGBImage(width: t.shape[1], height: t.shape[0], pixels: Array(t.bytes))
    }

    func floats(_ name: String) -> [Float]? {
        guard let t = tensors[name], t.dtype == "F32" else { return nil }
        return stride(from: t.bytes.startIndex, to: t.bytes.endIndex, by: 4).map { i in
            Float(bitPattern: UInt32(t.bytes[i]) | UInt32(t.bytes[i + 1]) << 8
                  | UInt32(t.bytes[i + 2]) << 16 | UInt32(t.bytes[i + 3]) << 24)
        }
    }
}

/// `nil` when equal, else a message naming the worst element (or the size mismatch).
func imageDifference(_ got: RGBImage, _ want: RGBImage) -> String? {
    guard got.width == want.width, got.height == want.height else {
        return "size \(got.width)x\(got.height), expected \(want.width)x\(want.height)"
    }
    var worst = 0, at = 0, count = 0
    for i in 0..<got.pixels.count {
        let d = abs(Int(got.pixels[i]) - Int(want.pixels[i]))
        if d > 0 { count += 1 }
        if d > worst { worst = d; at = i }
    }
    guard worst > 0 else { return nil }
    let p = at / 3
    return "max |Δ| = \(worst) at (x \(p % got.width), y \(p / got.width), c \(at % 3)): got \(got.pixels[at]), expected \(want.pixels[at]); \(count) elements differ"
}
