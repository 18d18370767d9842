// swift-tools-version: 6.1
import PackageDescription

/// Ringstore: an event store built around one memory-mapped ring journal.
///
/// The library target (`Ringstore`) stays lean: liblz4 from the system, a tiny C
/// helper for CRC32C, and small Apple packages. Command-line tools, servers and
/// benchmarks live in their own targets (benchmarks in their own package under
/// `Benchmarks/`, so that `swift test` never builds the benchmark harness).
let package = Package(
    name: "Ringstore",
    products: [
        .library(name: "Ringstore", targets: ["Ringstore"]),
        .executable(name: "ringstore", targets: ["ringstore"]),
        // Only for the fuzz targets in tools/fuzz; not a supported API.
        .library(name: "RingstoreJSONLines", targets: ["RingstoreJSONLines"]),
        .executable(name: "ringstore-torture", targets: ["ringstore-torture"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CLZ4",
            pkgConfig: "liblz4",
            providers: [.apt(["liblz4-dev"])]
        ),
        .target(name: "CRingstoreSupport"),
        .target(
            name: "Ringstore",
            dependencies: [
                "CLZ4",
                "CRingstoreSupport",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: [.enableUpcomingFeature("ExistentialAny")]
        ),
        // The JSON Lines reader of `ringstore import`, in a library of its own so the fuzz targets can reach it.
        .target(name: "RingstoreJSONLines"),
        .executableTarget(
            name: "ringstore",
            dependencies: [
                "Ringstore",
                "RingstoreJSONLines",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Crash testing: the killed writer, the kill loop and the verifier, shared
        // by `ringstore-torture` and the test suite.
        .target(
            name: "RingstoreCrashTesting",
            dependencies: ["Ringstore"],
            path: "tools/torture/CrashTesting"
        ),
        .executableTarget(
            name: "ringstore-torture",
            dependencies: [
                "Ringstore",
                "RingstoreCrashTesting",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "tools/torture/Command"
        ),
        .testTarget(
            name: "RingstoreTests",
            dependencies: ["Ringstore", "CRingstoreSupport", "RingstoreCrashTesting", "RingstoreJSONLines"]
        ),
    ]
)
