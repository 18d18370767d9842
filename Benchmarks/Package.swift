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
                .product(name: "Ringstore", package: "Ringstore"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "JournalAppend",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark"),
            ]
        ),
    ]
)
