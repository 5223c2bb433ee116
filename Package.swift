// swift-tools-version:6.0
import PackageDescription
import Foundation

// On x86-64 the engine is compiled for Haswell-class CPUs (AVX2, FMA: every x86-64 server since
// 2013/2015), which makes its SIMD kernels ~1.5× faster than baseline SSE2. BLIP_PORTABLE=1 builds
// for any x86-64 CPU. Executables check the CPU first (CPUFeatures) and say what is missing.
#if arch(x86_64)
let haswellEngine = ProcessInfo.processInfo.environment["BLIP_PORTABLE"] == nil
#else
let haswellEngine = false
#endif
let engineFlags = ["-Ounchecked"] + (haswellEngine ? ["-target-cpu", "haswell"] : [])
let cpuFeatureDefines: [SwiftSetting] = haswellEngine ? [.define("BLIP_ENGINE_HASWELL")] : []

let package = Package(
    name: "blip-captiond",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "BLIPEngine", targets: ["BLIPEngine"]),
        .library(name: "BLIPProtocol", targets: ["BLIPProtocol"]),
        .library(name: "BLIPClient", targets: ["BLIPClient"]),
        .library(name: "BLIPServer", targets: ["BLIPServer"]),
        .library(name: "BLIPCaptionService", targets: ["BLIPCaptionService"]),
        .executable(name: "blip-caption", targets: ["blip-caption"]),
        .executable(name: "blip-captiond", targets: ["blip-captiond"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        // C libraries, each behind a module map and one shim header.
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CTurboJPEG", pkgConfig: "libturbojpeg",
                       providers: [.apt(["libturbojpeg0-dev"])]),
        .systemLibrary(name: "CSPNG", pkgConfig: "spng",
                       providers: [.apt(["libspng-dev"])]),
        .systemLibrary(name: "CWebP", pkgConfig: "libwebpdemux",
                       providers: [.apt(["libwebp-dev"])]),
        // giflib ships no pkg-config file on Debian: the module map links libgif itself.
        .systemLibrary(name: "CGIF", providers: [.apt(["libgif-dev"])]),
        .systemLibrary(name: "CTIFF", pkgConfig: "libtiff-4",
                       providers: [.apt(["libtiff-dev"])]),
        .systemLibrary(name: "CHEIF", pkgConfig: "libheif",
                       providers: [.apt(["libheif-dev"])]),
        .systemLibrary(name: "CAVIF", pkgConfig: "libavif",
                       providers: [.apt(["libavif-dev"])]),
        .systemLibrary(name: "CProtobufC", pkgConfig: "libprotobuf-c",
                       providers: [.apt(["libprotobuf-c-dev"])]),
        // oneDNN (the bf16 and int8 products); no pkg-config file on Debian: the module map links it.
        .systemLibrary(name: "CDNNL", providers: [.apt(["libdnnl-dev"])]),
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd",
                       providers: [.apt(["libsystemd-dev"])]),
        // The C library's calls Swift cannot make (variadic ones: mremap).
        .systemLibrary(name: "CMemory"),

        // The decoding options' one table (names, types, ranges, defaults, help), which the wire, the
        // engine, the CLI and the OpenAI face all read. No dependencies.
        .target(name: "BLIPOptions"),

        // protoc-c output for proto/blip/v1 (regenerate with scripts/generate-proto.sh; never edit).
        .target(name: "BlipProtoC", dependencies: ["CProtobufC"]),
        // Framing, envelope, status codes and messages of the wire protocol. No sockets.
        .target(name: "BLIPProtocol", dependencies: ["BLIPOptions", "BlipProtoC", "CProtobufC"]),

        // Unix socket addresses and errno text, the same for the client and the daemon.
        .target(name: "BLIPSocket"),

        // What other services link to call the daemon: the protocol and a socket, never the engine.
        .target(name: "BLIPClient", dependencies: ["BLIPProtocol", "BLIPSocket"]),

        // blip-bench's FMA peak probe (AVX2 + FMA, chosen at run time). Optimised in debug builds
        // too; the vector code carries its own target attribute.
        .target(name: "CFMAProbe", cSettings: [.unsafeFlags(["-O3"])]),

        // Whether the engine as built can run on this CPU; built for the baseline instruction set.
        .target(name: "CPUFeatures", swiftSettings: cpuFeatureDefines),

        // The model, images, tokenizer and generation. No sockets, no protobuf.
        .target(
            name: "BLIPEngine",
            dependencies: ["BLIPOptions", "COpenBLAS", "CTurboJPEG", "CSPNG", "CWebP", "CGIF", "CTIFF", "CHEIF", "CAVIF",
                           "CMemory", "CPUFeatures", "CDNNL",
                           .product(name: "Crypto", package: "swift-crypto")],
            // Numeric code is 10–50× slower unoptimised; tests run in debug, so optimise this target always.
            swiftSettings: [.unsafeFlags(engineFlags)]
        ),

        // Listener, connections (on a SwiftNIO event loop), admission, sd_notify. Serves any
        // CaptionService; knows no engine.
        .target(name: "BLIPServer", dependencies: [
            "BLIPProtocol", "BLIPSocket", "CSystemd",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),

        // The adapter from the wire to the engine: the service the daemon serves.
        .target(name: "BLIPCaptionService", dependencies: ["BLIPServer", "BLIPProtocol", "BLIPEngine"]),

        // The daemon's options and its one linear start-up function, over whichever service it is
        // given: the engine (blip-captiond) or the tests' fake (blip-captiond-fake).
        .target(
            name: "BLIPDaemon",
            dependencies: [
                "BLIPServer", "BLIPProtocol", "BLIPEngine", "BLIPCaptionService", "CPUFeatures",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // The daemon: the start-up over the engine.
        .executableTarget(
            name: "blip-captiond",
            dependencies: [
                "BLIPDaemon", "BLIPServer", "BLIPProtocol", "BLIPEngine", "BLIPCaptionService",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        .executableTarget(
            name: "blip-caption",
            dependencies: [
                "BLIPEngine",
                "BLIPCaptionService",
                "BLIPClient",
                "CPUFeatures",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // Stage timings of the engine on a full-size model (scripts/bench/run.sh runs it beside PyTorch).
        // Optimised always, like BLIPEngine, so its bandwidth probe measures memory, not -Onone.
        .executableTarget(name: "blip-bench", dependencies: ["BLIPEngine", "COpenBLAS", "CFMAProbe", "CPUFeatures"],
                          swiftSettings: [.unsafeFlags(["-Ounchecked"])]),

        // What the test targets share: a temporary directory, a raw frame client, the launcher of
        // the built daemon, the fixtures' paths and the one fake engine. Never the engine itself.
        .target(name: "BLIPTestSupport", dependencies: ["BLIPProtocol", "BLIPSocket", "BLIPServer"], path: "Tests/BLIPTestSupport"),
        // The daemon's start-up over the fake engine, for end-to-end tests; not a product, never packaged.
        .executableTarget(name: "blip-captiond-fake", dependencies: [
            "BLIPDaemon", "BLIPTestSupport", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], path: "Tests/FakeDaemon"),

        .testTarget(name: "BLIPProtocolTests", dependencies: ["BLIPProtocol"]),
        .testTarget(name: "BLIPServerTests", dependencies: ["BLIPServer", "BLIPProtocol", "BLIPTestSupport"]),
        .testTarget(name: "EndToEndTests", dependencies: ["BLIPClient", "BLIPTestSupport"]),
        // The real units under a systemd --user manager in a private mount namespace (skips where impossible).
        .testTarget(name: "SystemdTests"),
        // Bad input and faults against the real blip-captiond binary; replays fuzz/corpus.
        .testTarget(name: "ReliabilityTests", dependencies: ["BLIPProtocol", "BLIPEngine", "BLIPTestSupport"], exclude: ["Inputs"]),
        .testTarget(name: "BLIPClientTests", dependencies: ["BLIPClient", "BLIPProtocol", "BLIPTestSupport"]),
        .testTarget(name: "BLIPCaptionServiceTests", dependencies: ["BLIPCaptionService", "BLIPServer", "BLIPProtocol", "BLIPEngine", "BLIPTestSupport"]),
        .testTarget(
            name: "BLIPEngineTests",
            dependencies: ["BLIPEngine", "BLIPProtocol", "CPUFeatures", "BLIPTestSupport"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
