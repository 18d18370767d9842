// swift-tools-version: 6.1
import PackageDescription

/// Ringstore: an event store built around one memory-mapped ring journal.
///
/// The library target (`Ringstore`) stays lean: liblz4 from the system, a tiny C
/// helper for CRC32C, and small Apple packages (swift-system, swift-log,
/// swift-metrics). Command-line tools, servers and benchmarks live in their own targets (benchmarks in their own package under
/// `Benchmarks/`, so that `swift test` never builds the benchmark harness).
let package = Package(
    name: "Ringstore",
    products: [
        .library(name: "Ringstore", targets: ["Ringstore"]),
        .executable(name: "ringstore", targets: ["ringstore"]),
        // Only for the fuzz targets in tools/fuzz; not a supported API.
        .library(name: "RingstoreJSONLines", targets: ["RingstoreJSONLines"]),
        .executable(name: "ringstore-torture", targets: ["ringstore-torture"]),
        .executable(name: "ringstore-admin", targets: ["ringstore-admin"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        // The server (`ringstore serve`) and its HTTP client (`--url`); no trait of Hummingbird's
        // is needed, and leaving out swift-configuration shortens a clean build.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-async-algorithms.git", from: "1.1.4"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
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
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "BitCollections", package: "swift-collections"),
            ],
            swiftSettings: [.enableUpcomingFeature("ExistentialAny")]
        ),
        // `ringstore bench`: the workload driver, latency recording, the SQLite peer
        // (GRDB) and the report. Kept out of `Ringstore` so the library never links SQLite.
        .target(
            name: "RingstoreBench",
            dependencies: [
                "Ringstore",
                "CRingstoreSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: [.enableUpcomingFeature("ExistentialAny")]
        ),
        // The JSON Lines reader of `ringstore import` and writer of `read`/`export`, in a library of its own so the fuzz targets can reach it.
        .target(name: "RingstoreJSONLines", dependencies: ["Ringstore"]),
        // `ringstore serve`: the HTTP/JSON API, Server-Sent Events, metrics, the browser
        // page and the OpenAPI description, on Hummingbird. Kept out of `Ringstore` so the
        // library never links a server.
        .target(
            name: "RingstoreServer",
            dependencies: [
                "Ringstore",
                "RingstoreJSONLines",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncAlgorithms", package: "swift-async-algorithms"),
            ],
            // Embedded in the binary: the server needs no files beside it.
            resources: [.embedInCode("Resources/openapi.json"), .embedInCode("Resources/index.html")],
            swiftSettings: [.enableUpcomingFeature("ExistentialAny")]
        ),
        // A small HTTP/1.1 client on SwiftNIO for `ringstore … --url` and the server's
        // tests (async-http-client would bring TLS and HTTP/2 into every build).
        .target(
            name: "RingstoreHTTPClient",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: [.enableUpcomingFeature("ExistentialAny")]
        ),
        .executableTarget(
            name: "ringstore",
            dependencies: [
                "Ringstore",
                "RingstoreBench",
                "RingstoreJSONLines",
                "RingstoreServer",
                "RingstoreHTTPClient",
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Crash testing: the killed writer, the kill loop and the verifier, shared
        // by `ringstore-torture` and the test suite.
        .target(
            name: "RingstoreCrashTesting",
            dependencies: ["Ringstore", .product(name: "Logging", package: "swift-log")],
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
        // `ringstore-admin`: offline verify, compact, dump and stats of a closed store. The
        // work is in the library (`Sources/Ringstore/Maintenance`, `package` API), which
        // has the codecs; this is the command line over it.
        .executableTarget(
            name: "ringstore-admin",
            dependencies: [
                "Ringstore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "tools/admin"
        ),
        .testTarget(
            name: "RingstoreTests",
            dependencies: [
                "Ringstore", "CRingstoreSupport", "RingstoreCrashTesting", "RingstoreBench", "RingstoreJSONLines",
                .product(name: "InMemoryLogging", package: "swift-log"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        .testTarget(
            name: "RingstoreServerTests",
            dependencies: [
                "Ringstore", "RingstoreServer", "RingstoreHTTPClient", "RingstoreJSONLines",
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
    ]
)
