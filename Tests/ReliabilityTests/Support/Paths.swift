import BLIPTestSupport
import Foundation

/// The fixtures these tests read.
enum Paths {
    static let tinyA = PackagePaths.fixtures.appendingPathComponent("models/tiny-a")
    static let images = PackagePaths.fixtures.appendingPathComponent("images")
    static let inputs = PackagePaths.root.appendingPathComponent("Tests/ReliabilityTests/Inputs")

    static func image(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: images.appendingPathComponent(name)))
    }

    static func input(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: inputs.appendingPathComponent(name)))
    }
}
