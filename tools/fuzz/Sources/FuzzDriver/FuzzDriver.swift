import Foundation

/// Shared plumbing for the fuzz targets.
///
/// SwiftPM links an executable with `main` pointing at `<Target>_main`, so
/// each target defines that and hands over to libFuzzer with ``runFuzzer``;
/// it also defines `LLVMFuzzerTestOneInput`, which libFuzzer's own (unused)
/// `main` refers to. Inputs start with one mode byte: bit 0 asks the
/// target to fix up the checksums first, so that the fuzzer reaches the
/// structural checks behind them instead of stopping at the CRC.
public typealias FuzzCallback = @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt

/// The input as (mode, payload).
public func fuzzInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> (fixChecksums: Bool, payload: [UInt8]) {
    guard size > 0, let data else { return (false, []) }
    let bytes = UnsafeBufferPointer(start: data, count: size)
    return (bytes[0] & 1 != 0, Array(bytes[1...]))
}

/// If `RINGSTORE_FUZZ_WRITE_SEEDS` names a folder, writes `seeds` there (each
/// with mode byte 0) and exits: `run.sh` calls this to create the first corpus.
public func writeSeedsIfAsked(_ seeds: @autoclosure () -> [(name: String, bytes: [UInt8])]) {
    guard let folder = ProcessInfo.processInfo.environment["RINGSTORE_FUZZ_WRITE_SEEDS"] else { return }
    try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    for seed in seeds() {
        guard FileManager.default.createFile(atPath: folder + "/seed-" + seed.name, contents: Data([0] + seed.bytes)) else {
            fatalError("cannot write the seed \(seed.name) into \(folder)")
        }
    }
    exit(0)
}

/// Stops the fuzzer with a report when a decoder breaks a promise (libFuzzer saves the input).
public func fuzzCheck(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition {
        FileHandle.standardError.write(Data("fuzz check failed: \(message())\n".utf8))
        abort()
    }
}

@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: FuzzCallback) -> CInt

/// Runs libFuzzer with the process's arguments and `callback` as the target.
public func runFuzzer(argc: CInt, argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, _ callback: FuzzCallback) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv, callback)
}
