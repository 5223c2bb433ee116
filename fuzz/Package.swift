// swift-tools-version:6.0
// libFuzzer targets for blip-captiond's untrusted-input parsers. A separate package, so the main
// build never sees -sanitize=fuzzer. Build and run with scripts/fuzz.sh (it passes
// `--sanitize=fuzzer --sanitize=address`); each executable's entry is LLVMFuzzerTestOneInput and
// libFuzzer supplies main().
import PackageDescription

let targets = ["FuzzFrame", "FuzzCaptionRequest", "FuzzJPEG", "FuzzPNG", "FuzzImage", "FuzzEXIF", "FuzzSafeTensors", "FuzzTokenizer", "FuzzCheckpoint"]

let package = Package(
    name: "blip-fuzz",
    dependencies: [.package(name: "blip-captiond", path: "..")],
    targets: targets.map { name in
        .executableTarget(
            name: name,
            dependencies: [
                .product(name: "BLIPProtocol", package: "blip-captiond"),
                .product(name: "BLIPEngine", package: "blip-captiond"),
                .product(name: "BLIPCaptionService", package: "blip-captiond"),
            ],
            // No main.swift: libFuzzer provides main().
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        )
    },
    swiftLanguageModes: [.v6]
)
