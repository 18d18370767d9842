// swift-tools-version: 6.1
import Foundation
import PackageDescription

/// libFuzzer targets for Ringstore's decoders. A package of its own, so that
/// `swift test` never builds them; `tools/fuzz/run.sh TARGET SECONDS` builds
/// them (debug, so that `@testable import` reaches the internal decoders) with
/// `-sanitize=fuzzer,address` and runs one.

/// A path dependency is known by its folder's name, which differs between
/// checkouts: compute it rather than assume it.
let ringstoreRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let rootPackage = ringstoreRoot.lastPathComponent
let ringstore = Target.Dependency.product(name: "Ringstore", package: rootPackage)

let package = Package(
    name: "RingstoreFuzz",
    dependencies: [.package(path: "../..")],
    targets: [
        .target(name: "FuzzDriver"),
        .executableTarget(name: "FuzzJournalRecord", dependencies: ["FuzzDriver", ringstore]),
        .executableTarget(name: "FuzzStreamBlock", dependencies: ["FuzzDriver", ringstore]),
        .executableTarget(name: "FuzzHeaderSlots", dependencies: ["FuzzDriver", ringstore]),
        .executableTarget(name: "FuzzSegmentSummary", dependencies: ["FuzzDriver", ringstore]),
        .executableTarget(name: "FuzzJSONLines", dependencies: ["FuzzDriver", .product(name: "RingstoreJSONLines", package: rootPackage)]),
    ]
)
