import BLIPTestSupport
import Foundation
import Glibc
import Testing
@testable import BLIPEngine

/// Issue 13: the weights live in memory the process owns, so the file can change under a loaded
/// model (truncated, overwritten in place) without a SIGBUS or a silent change of weights.
@Suite struct ModelFileOwnershipTests {
    @Test func aLoadedFileSurvivesTruncationAndOverwrite() throws {
        let directory = TemporaryDirectory(prefix: "blip-weights")
        let path = directory.path + "/model.safetensors"
        try FileManager.default.copyItem(atPath: Fixtures.modelFolder("tiny-a").weights.path, toPath: path)
        let file = try SafeTensorsFile(url: URL(fileURLWithPath: path))
        let snapshot = file.entries.values.sorted { $0.name < $1.name }.map { Array(file.bytes(of: $0)) }

        #expect(truncate(path, 0) == 0)
        let afterTruncate = file.entries.values.sorted { $0.name < $1.name }.map { Array(file.bytes(of: $0)) }
        #expect(afterTruncate == snapshot, "the loaded bytes must not depend on the file any more")

        try Data(repeating: 0x5A, count: 5 << 20).write(to: URL(fileURLWithPath: path))
        let afterOverwrite = file.entries.values.sorted { $0.name < $1.name }.map { Array(file.bytes(of: $0)) }
        #expect(afterOverwrite == snapshot)
        #expect(SafeTensorsFile.FileStamp.current(path: path) != file.fileStamp, "the stamp tells a changed file")
    }

    @Test func aTruncatedFileIsRefusedWithWhatToDo() throws {
        let directory = TemporaryDirectory(prefix: "blip-weights")
        let path = directory.path + "/model.safetensors"
        try FileManager.default.copyItem(atPath: Fixtures.modelFolder("tiny-a").weights.path, toPath: path)
        let size = try #require(FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        #expect(truncate(path, off_t(size - 1)) == 0)
        #expect(throws: ModelError.self) { try SafeTensorsFile(url: URL(fileURLWithPath: path)) }
    }
}
