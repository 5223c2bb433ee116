import BLIPTestSupport
import Foundation
import Testing
@testable import BLIPEngine

/// Paths of the committed fixtures (written by scripts/reference/make_fixtures.py) and small readers.
enum Fixtures {
    static let root = PackagePaths.fixtures

    static func modelFolder(_ name: String) -> ModelFolder {
        ModelFolder(url: root.appendingPathComponent("models").appendingPathComponent(name))
    }

    static var modelNames: [String] {
        let dir = root.appendingPathComponent("models")
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
    }

    static func golden(model: String, image: String) throws -> SafeTensorsFile {
        try SafeTensorsFile(url: root.appendingPathComponent("golden/\(model)/\(image).safetensors"))
    }

    static func imageBytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: root.appendingPathComponent("images").appendingPathComponent(name)))
    }
}

extension SafeTensorsFile {
    /// A float32 tensor of a fixture file as an array.
    func floats(_ name: String) throws -> [Float] {
        let entry = try #require(entries[name], "fixture \(url.lastPathComponent) lacks \(name)")
        #expect(entry.dtype == .f32)
        let bytes = self.bytes(of: entry)
        return (0..<entry.elementCount).map { bytes.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) }
    }

    func uint8s(_ name: String) throws -> [UInt8] {
        let entry = try #require(entries[name], "fixture \(url.lastPathComponent) lacks \(name)")
        #expect(entry.dtype == .u8)
        return Array(self.bytes(of: entry))
    }
}

/// The worst element of a comparison, for failure messages and closing notes.
struct Difference: CustomStringConvertible {
    var index = -1
    var absolute: Float = 0
    var relative: Float = 0   // |a − b| / max|b| over the whole tensor
    var expected: Float = 0
    var actual: Float = 0

    init(actual: some Collection<Float>, expected: some Collection<Float>) {
        let scale = max(expected.map { abs($0) }.max() ?? 0, 1e-30)
        for (i, (a, b)) in zip(actual, expected).enumerated() where abs(a - b) > absolute || (a.isNaN && !b.isNaN) {
            index = i; absolute = a.isNaN ? .infinity : abs(a - b); self.expected = b; self.actual = a
        }
        relative = absolute / scale
    }

    var description: String {
        "worst |Δ| = \(absolute) (relative to max |expected| \(relative)) at element \(index): got \(actual), expected \(expected)"
    }
}
