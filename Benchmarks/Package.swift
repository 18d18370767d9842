// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "RingstoreBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Ringstore", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "JournalAppend",
            dependencies: [
                "BenchmarkSupport",
                .product(name: "Ringstore", package: "Ringstore"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "JournalAppend",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark"),
            ]
        ),
        // A fixed JournalAppend workload for counting instructions with callgrind
        // (cpu-per-event.sh); no harness, so that the count is the store's.
        .executableTarget(
            name: "JournalCPU",
            dependencies: [
                .product(name: "Ringstore", package: "Ringstore"),
            ],
            path: "JournalCPU"
        ),
        // Shared by the targets below: temporary stores, payloads, the fill loop.
        .target(
            name: "BenchmarkSupport",
            dependencies: [
                .product(name: "Ringstore", package: "Ringstore"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "BenchmarkSupport"
        ),
        .executableTarget(
            name: "SplitAndRead",
            dependencies: [
                "BenchmarkSupport",
                .product(name: "Ringstore", package: "Ringstore"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "SplitAndRead",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark"),
            ]
        ),
        .executableTarget(
            name: "Subscription",
            dependencies: [
                "BenchmarkSupport",
                .product(name: "Ringstore", package: "Ringstore"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Subscription",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark"),
            ]
        ),
        .executableTarget(
            name: "Codec",
            dependencies: [
                "BenchmarkSupport",
                .product(name: "Ringstore", package: "Ringstore"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Codec",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark"),
            ]
        ),
    ]
)
