// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "blip-captiond",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "BLIPEngine", targets: ["BLIPEngine"]),
        .executable(name: "blip-caption", targets: ["blip-caption"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // C libraries, each behind a module map and one shim header.
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CTurboJPEG", pkgConfig: "libturbojpeg",
                       providers: [.apt(["libturbojpeg0-dev"])]),
        .systemLibrary(name: "CSPNG", pkgConfig: "spng",
                       providers: [.apt(["libspng-dev"])]),
        .systemLibrary(name: "CProtobufC", pkgConfig: "libprotobuf-c",
                       providers: [.apt(["libprotobuf-c-dev"])]),
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd",
                       providers: [.apt(["libsystemd-dev"])]),

        // The model, images, tokenizer and generation. No sockets, no protobuf.
        .target(
            name: "BLIPEngine",
            dependencies: ["COpenBLAS", "CTurboJPEG", "CSPNG"],
            swiftSettings: [.unsafeFlags(["-Ounchecked"])]
        ),

        .executableTarget(
            name: "blip-caption",
            dependencies: [
                "BLIPEngine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        .testTarget(
            name: "BLIPEngineTests",
            dependencies: ["BLIPEngine"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
