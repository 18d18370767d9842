import Foundation
import Testing
@testable import Ringstore

/// Stores for the `ringstore-admin` tests: built once per test in its own folder.
enum AdminFixture {
    /// One-event and multi-event appends over a few streams (1 MiB journal, so it wraps and
    /// split segments fill), one large stream (large blocks; an index file once compacted),
    /// metadata, deletes and snapshots. Closed cleanly.
    static func build(at path: String, largeStream: Bool = false) async throws {
        let store = try await EventStore.open(at: path, configuration: .testing())
        for i in 0..<600 {
            _ = try await store.append(to: "s-\(i % 40)", events: [EventData(type: "t", json: "{\"n\":\(i),\"pad\":\"\(String(repeating: "x", count: 150))\"}")])
        }
        for i in 0..<10 { _ = try await store.append(to: "trimmed", events: [EventData(type: "t", json: "{\"i\":\(i)}")]) }
        for i in 0..<10 { _ = try await store.append(to: "truncated", events: [EventData(type: "t", json: "{\"i\":\(i)}")]) }
        for i in 0..<5 { _ = try await store.append(to: "soft", events: [EventData(type: "t", json: "{\"i\":\(i)}")]) }
        for i in 0..<5 { _ = try await store.append(to: "hard", events: [EventData(type: "t", json: "{\"i\":\(i)}")]) }
        for i in 0..<5 { _ = try await store.append(to: "aged", events: [EventData(type: "t", json: "{\"i\":\(i)}")]) }
        for i in 0..<5 { _ = try await store.append(to: "fresh", events: [EventData(type: "t", json: "{\"i\":\(i)}")]) }
        // Every event of "aged" is older than a nanosecond by the time anything reads it; none of "fresh" older than a day.
        try await store.setStreamMetadata(StreamMetadata(maxAge: .nanoseconds(1)), for: "aged")
        try await store.setStreamMetadata(StreamMetadata(maxAge: .seconds(86_400)), for: "fresh")
        try await store.setStreamMetadata(StreamMetadata(maxCount: 3), for: "trimmed")
        try await store.setStreamMetadata(StreamMetadata(truncateBefore: 4), for: "truncated")
        try await store.deleteStream("soft")
        try await store.tombstoneStream("hard")
        for v in 0..<3 { try await store.saveSnapshot(of: "s-1", version: UInt64(v), data: [UInt8](repeating: UInt8(v), count: 100)) }
        if largeStream {
            for i in 0..<120 {
                _ = try await store.append(to: "large", events: [EventData(type: "blob", data: [UInt8]((0..<30_000).map { UInt8(truncatingIfNeeded: $0 &* (i + 7)) }),
                                                                           contentType: .binary)])
            }
        }
        try await store.close()
    }

    /// Expects `ringstore-admin verify` to find nothing wrong at `path`; `context` names the case.
    static func expectVerifiesClean(at path: String, _ context: String,
                                    sourceLocation: SourceLocation = #_sourceLocation) throws {
        let check = try MaintenanceSession(directory: path)
        let problems = check.verify().problems
        check.close()
        #expect(problems.isEmpty, "\(context): \(problems.prefix(5))", sourceLocation: sourceLocation)
    }

    /// Expects the stores at `path` and `other` to hold the same stream files, index
    /// files and global index, byte for byte (two compactions of the same store).
    static func expectSameStreamFiles(_ path: String, _ other: String,
                                      sourceLocation: SourceLocation = #_sourceLocation) throws {
        let files = try FileManager.default.subpathsOfDirectory(atPath: path + "/streams").sorted()
        #expect(try FileManager.default.subpathsOfDirectory(atPath: other + "/streams").sorted() == files, sourceLocation: sourceLocation)
        for file in files {
            #expect(FileManager.default.contents(atPath: path + "/streams/" + file) == FileManager.default.contents(atPath: other + "/streams/" + file),
                    "\(file) differs", sourceLocation: sourceLocation)
        }
        #expect(FileManager.default.contents(atPath: path + "/" + GlobalIndex.fileName) == FileManager.default.contents(atPath: other + "/" + GlobalIndex.fileName),
                sourceLocation: sourceLocation)
    }

    /// Expects none of `names` (a compaction's folders and marker) left in `path`.
    static func expectNoLeftovers(_ names: [String], in path: String, _ context: String,
                                  sourceLocation: SourceLocation = #_sourceLocation) {
        for name in names {
            #expect(!FileManager.default.fileExists(atPath: "\(path)/\(name)"), "\(name) after \(context)", sourceLocation: sourceLocation)
        }
    }

    /// Every visible event, as reads show it: `$all` in order, then each stream read whole.
    static func visible(at path: String) async throws -> [String] {
        let store = try await EventStore.open(at: path, configuration: .testing())
        var lines: [String] = []
        for try await event in store.readAll() { lines.append(describe(event)) }
        for name in try store.streamNames().sorted() {
            do {
                for try await event in store.read(stream: name) { lines.append("stream " + describe(event)) }
            } catch let error as RingstoreError where error.code == .streamNotFound || error.code == .streamDeleted {
                lines.append("stream \(name): \(error.code)")
            }
        }
        if let snapshot = try store.loadSnapshot(of: "s-1") { lines.append("snapshot \(snapshot.version) \(snapshot.data.count)") }
        try await store.close()
        return lines
    }

    static func describe(_ e: RecordedEvent) -> String {
        "\(e.stream) v\(e.version) @\(e.position) \(e.id) \(e.type) \(e.timestampNanoseconds) \(e.data) \(e.metadata)"
    }

    /// Copies a store folder.
    static func copy(_ from: String, to: String) throws {
        try FileManager.default.copyItem(atPath: from, toPath: to)
    }

    /// A copy of `base` at `path` whose compaction was stopped at `step` (as a
    /// crash there would stop it), and the session that ran it, still holding the lock.
    static func compactionStopped(at step: CompactionStep, copying base: String, to path: String,
                                  sourceLocation: SourceLocation = #_sourceLocation) async throws -> MaintenanceSession {
        try copy(base, to: path)
        let session = try MaintenanceSession(directory: path)
        CompactionCrashPoints.arm(step, for: path)
        await #expect(throws: CompactionCrashPoints.SimulatedCrash.self, sourceLocation: sourceLocation) {
            _ = try await session.compact(options: CompactOptions())
        }
        return session
    }

    /// Flips one bit of the byte at `offset` of `file`.
    static func flip(_ file: String, at offset: UInt64) throws {
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: file))
        defer { try? handle.close() }
        try handle.seek(toOffset: offset)
        let byte = try handle.read(upToCount: 1)![0]
        try handle.seek(toOffset: offset)
        try handle.write(contentsOf: [byte ^ 0x10])
    }

    /// The `ringstore-admin` binary built beside the test bundle.
    static var executable: String { CrashTests.tortureExecutable.replacingOccurrences(of: "ringstore-torture", with: "ringstore-admin") }

    /// Runs `ringstore-admin` to completion; returns (exit status, stdout, stderr).
    static func run(_ arguments: [String]) throws -> (Int32, String, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let error = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self), String(decoding: error, as: UTF8.self))
    }
}
