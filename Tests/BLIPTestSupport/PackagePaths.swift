import Foundation

/// Where things are in the package, found from this file's location (no SwiftPM resources).
public enum PackagePaths {
    /// The package's root folder (the one holding `Package.swift`).
    public static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `Tests/Fixtures`: the tiny models, images and reference dumps.
    public static let fixtures = root.appendingPathComponent("Tests/Fixtures")

    /// The built executable `name`: the one next to the running test bundle (so
    /// `--scratch-path .build-asan` tests the sanitized build), else `.build/debug/NAME`. The
    /// path is returned whether or not the file exists; check with `isExecutableFile(atPath:)`.
    /// - Parameter name: The product's name, e.g. `"blip-caption"`.
    public static func builtProduct(_ name: String) -> String {
        let besideTests = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent(name).path
        if FileManager.default.isExecutableFile(atPath: besideTests) { return besideTests }
        return root.appendingPathComponent(".build/debug/\(name)").path
    }

    /// The built `blip-captiond`.
    public static let daemon = builtProduct("blip-captiond")

    /// The built `blip-captiond-fake`: the daemon's start-up over ``FakeService`` (no model).
    public static let fakeDaemon = builtProduct("blip-captiond-fake")
}
