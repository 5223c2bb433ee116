import BLIPTestSupport
import Foundation
import Glibc
import Testing
@testable import BLIPEngine

/// Issue 13: once `takeOwnership()` has copied them, the weights live in memory the process owns,
/// so the file can change under a loaded model (truncated, overwritten in place) without a SIGBUS
/// or a silent change of weights.
@Suite struct ModelFileOwnershipTests {
    @Test func aLoadedFileSurvivesTruncationAndOverwrite() throws {
        let directory = TemporaryDirectory(prefix: "blip-weights")
        let path = directory.path + "/model.safetensors"
        try FileManager.default.copyItem(atPath: Fixtures.modelFolder("tiny-a").weights.path, toPath: path)
        let file = try SafeTensorsFile(url: URL(fileURLWithPath: path))
        let snapshot = file.entries.values.sorted { $0.name < $1.name }.map { Array(file.bytes(of: $0)) }
        #expect(!file.isOwned, "loading maps the file")
        let pointers = file.entries.values.sorted { $0.name < $1.name }.map { file.bytes(of: $0).baseAddress }
        #expect(try file.takeOwnership() > 0)
        #expect(file.isOwned)
        #expect(file.entries.values.sorted { $0.name < $1.name }.map { file.bytes(of: $0).baseAddress } == pointers,
                "the copy sits at the mapping's addresses: pointers into the tensors stay valid")
        #expect(file.entries.values.sorted { $0.name < $1.name }.map { Array(file.bytes(of: $0)) } == snapshot)
        #expect(try file.takeOwnership() == 0, "a second call copies nothing")

        #expect(truncate(path, 0) == 0)
        let afterTruncate = file.entries.values.sorted { $0.name < $1.name }.map { Array(file.bytes(of: $0)) }
        #expect(afterTruncate == snapshot, "the loaded bytes must not depend on the file any more")

        try Data(repeating: 0x5A, count: 5 << 20).write(to: URL(fileURLWithPath: path))
        let afterOverwrite = file.entries.values.sorted { $0.name < $1.name }.map { Array(file.bytes(of: $0)) }
        #expect(afterOverwrite == snapshot)
        #expect(SafeTensorsFile.FileStamp.current(path: path) != file.fileStamp, "the stamp tells a changed file")
    }

    /// A file rewritten between the mapping and the copy: the copy may mix both versions, so it
    /// is reported.
    @Test func aFileChangedBeforeTheCopyIsReported() throws {
        let directory = TemporaryDirectory(prefix: "blip-weights")
        let path = directory.path + "/model.safetensors"
        try FileManager.default.copyItem(atPath: Fixtures.modelFolder("tiny-a").weights.path, toPath: path)
        let file = try SafeTensorsFile(url: URL(fileURLWithPath: path))
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.seek(toOffset: 16)
        try handle.write(contentsOf: Data("changed".utf8))
        try handle.close()
        var st = stat()
        _ = stat(path, &st)
        var times = [timespec(tv_sec: st.st_mtim.tv_sec + 5, tv_nsec: 0), timespec(tv_sec: st.st_mtim.tv_sec + 5, tv_nsec: 0)]
        _ = utimensat(AT_FDCWD, path, &times, 0)
        #expect(throws: ModelError.self) { try file.takeOwnership() }
        #expect(file.isOwned, "the copy is made; the caller decides (the daemon exits for a restart)")
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
