import BLIPTestSupport
import Foundation
import Glibc
import Testing

/// How `blip-caption` turns its arguments into images: directories through symbolic links (each
/// real directory once), hidden files skipped, `--bad-words` taking one value per flag.
extension CLITests {
    static var built: Bool { FileManager.default.isExecutableFile(atPath: binary.path) }

    /// The images a local run captioned, in output order.
    func captionedImages(_ arguments: [String]) throws -> (Run, [String]) {
        let r = try run(["--local", "--model", Fixtures.modelFolder("tiny-a").url.path, "--json", "--max-new-tokens", "2"] + arguments)
        return (r, try jsonLines(r).compactMap { $0["image"] as? String })
    }

    /// alias → photos; photos holds link → real (a directory), real/loop → .. (a loop back up),
    /// hidden files and folders, and z.jpg. Every real directory is walked once, through the
    /// first name that reaches it in sorted order; nothing hidden is captioned.
    @Test(.enabled(if: built, "build blip-caption first (swift build)"))
    func symlinkedDirectoriesAreFollowedOnceAndHiddenFilesSkipped() throws {
        let directory = TemporaryDirectory()
        let fm = FileManager.default
        let photos = directory.path + "/photos"
        let png = Fixtures.root.appendingPathComponent("images/rocket.png").path
        let jpg = Fixtures.root.appendingPathComponent("images/astronaut_q90_420.jpg").path
        try fm.createDirectory(atPath: photos + "/real", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: photos + "/.thumbnails", withIntermediateDirectories: true)
        try fm.copyItem(atPath: png, toPath: photos + "/real/a.png")
        try fm.copyItem(atPath: jpg, toPath: photos + "/z.jpg")
        try fm.copyItem(atPath: jpg, toPath: photos + "/.hidden.jpg")
        try fm.copyItem(atPath: jpg, toPath: photos + "/.thumbnails/t.jpg")
        try Data("not an image".utf8).write(to: URL(fileURLWithPath: photos + "/notes.txt"))
        try fm.createSymbolicLink(atPath: photos + "/link", withDestinationPath: "real")
        try fm.createSymbolicLink(atPath: photos + "/real/loop", withDestinationPath: "..")
        try fm.createSymbolicLink(atPath: directory.path + "/alias", withDestinationPath: "photos")

        let (r, images) = try captionedImages([directory.path + "/alias"])
        #expect(r.status == 0, "\(r.stderr)")
        let base = directory.path + "/alias/"
        #expect(images == [base + "link/a.png", base + "z.jpg"], "\(images)")
        // The last line says what the walk left out, and why.
        #expect(r.stderr.contains("blip-caption: skipped 3 files in the directories given: 1 not an image by extension (.txt 1); 2 hidden (name starting with '.'); images are read by extension: .avif, .bmp,"), "\(r.stderr)")

        // A folder with nothing but hidden images is a usage error, which says why.
        let empty = directory.path + "/only-hidden"
        try fm.createDirectory(atPath: empty, withIntermediateDirectories: true)
        try fm.copyItem(atPath: jpg, toPath: empty + "/.x.jpg")
        let none = try run(["--local", "--model", Fixtures.modelFolder("tiny-a").url.path, empty])
        #expect(none.status == 64, "\(none.stderr)")
        #expect(none.stderr.contains("holds no image files (.avif, .bmp, "), "\(none.stderr)")
        #expect(none.stderr.contains("; hidden ones are skipped)"), "\(none.stderr)")
    }

    /// `--bad-words x IMAGE` used to take IMAGE as a second bad word ("Missing expected argument").
    @Test(.enabled(if: built, "build blip-caption first (swift build)"))
    func badWordsTakeOneValuePerFlag() throws {
        let image = Fixtures.root.appendingPathComponent("images/rocket.png").path
        let (r, images) = try captionedImages(["--bad-words", "oral", "--bad-words", "a b", image])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(images == [image])
        let help = try run(["caption", "--help"]).stdout
        #expect(help.contains("--bad-words <text>"), "\(help)")
    }
}
