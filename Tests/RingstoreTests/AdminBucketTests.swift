import Foundation
import SystemPackage
import Testing
@_spi(PowerLossTesting) @testable import Ringstore

/// `ringstore-admin` on stores whose small streams are in bucket files:
/// `verify` follows the chains as opening does, `dump` and `stats` show the
/// files, and `compact` keeps small streams in new bucket files (or, with
/// buckets off, gives every stream a file) and drops the chains of promoted
/// streams and entries a crash left.
@Suite struct AdminBucketTests {
    static var configuration: Configuration {
        var configuration = Configuration.testing(capacity: 256 << 10)
        configuration.splitSegmentBudget = 256 << 10
        configuration.streamBuckets = true
        return configuration
    }

    /// Small streams moved into buckets, one large stream that grew out of its
    /// bucket into a file (its old chain stays behind as garbage), a stream trimmed
    /// by `maxCount` and a deleted one. Closed cleanly, with some events still in segments.
    static func build(at path: String) async throws {
        let store = try await EventStore.open(at: path, configuration: configuration)
        // A first small event puts the large stream into the segments: from then on its large
        // records go there too, not straight into a file of its own (``Splitter/directBlockBytes``).
        _ = try await store.append(to: "large", events: [EventData(type: "t", json: "{\"first\":true}")])
        await store.splitter.checkpointForTesting()
        // Three rounds, each ended by the mover emptying a segment: the large stream's
        // first moves (under 1 MiB) go into its bucket, a later one into a file.
        for round in 0..<3 {
            let deleted = store.splitter.mover.segmentsDeleted.load(ordering: .relaxed)
            for i in (round * 2_000)..<((round + 1) * 2_000) {
                _ = try await store.append(to: "s-\(i % 200)", events: [EventData(type: "t", json: "{\"n\":\(i),\"pad\":\"\(String(repeating: "x", count: 100))\"}")])
                if i % 100 == 0 {
                    // Incompressible: 20 of them are about 480 KiB raw, 60 pass the promotion limit (1 MiB).
                    let data = (0..<24_000).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 13 &+ i) }
                    _ = try await store.append(to: "large", events: [EventData(type: "blob", data: data, contentType: .binary)])
                }
            }
            // A sweep takes only segments a checkpoint covers.
            await store.splitter.checkpointForTesting()
            try await waitUntil("the mover to empty a segment in round \(round)") {
                store.splitter.mover.segmentsDeleted.load(ordering: .relaxed) > deleted
            }
        }
        try await store.setStreamMetadata(StreamMetadata(maxCount: 3), for: "s-3")
        try await store.deleteStream("s-4")
        try await store.close()
    }

    static func streamFiles(in path: String) throws -> [String] {
        try FileManager.default.subpathsOfDirectory(atPath: path + "/streams").filter { $0.hasSuffix(".stream") }
    }

    static func verify(_ path: String) throws -> VerifyReport {
        let session = try MaintenanceSession(directory: path, configuration: configuration)
        defer { session.close() }
        return session.verify()
    }

    @Test func verifyFollowsTheChainsAndCompactionKeepsSmallStreamsInBuckets() async throws {
        let dir = TemporaryDirectory()
        let path = dir.child("store")
        try await Self.build(at: path)
        let before = try await AdminFixture.visible(at: path)
        let report = try Self.verify(path)
        #expect(report.isClean, "\(report.problems.prefix(5))")
        let inventory = report.inventory
        #expect(inventory.bucketFiles > 0 && inventory.bucketEvents > 0, "\(inventory.bucketFiles) files, \(inventory.bucketEvents) events")
        #expect(inventory.events == 6_063, "every event is stored once (file, bucket chain or segment), two metadata events among them")
        #expect(try Self.streamFiles(in: path).count == 1, "only the large stream has a file")
        #expect(inventory.bucketGarbageEntries > 0, "the large stream's old chain is garbage")

        // `dump` lists the bucket files and their chained entries.
        let session = try MaintenanceSession(directory: path, configuration: Self.configuration)
        var lines: [String] = []
        try session.dump(MaintenanceSession.DumpOptions(json: true)) { lines.append($0) }
        session.close()
        #expect(lines.contains { $0.contains("\"kind\":\"bucket\"") }, "\(lines.prefix(3))")
        #expect(lines.contains { $0.contains("streams/buckets/") && $0.contains("\"previous\"") })

        // Compaction keeps what reads show; small streams from version 0 stay in buckets.
        let compacting = try MaintenanceSession(directory: path, configuration: Self.configuration)
        let summary = try await compacting.compact(options: CompactOptions())
        compacting.close()
        #expect(summary.streamsBucketed == 200, "every small stream but the trimmed and the deleted one, and their metadata streams")
        #expect(try await AdminFixture.visible(at: path) == before)
        let after = try Self.verify(path)
        #expect(after.isClean, "\(after.problems.prefix(5))")
        #expect(after.inventory.bucketGarbageEntries == 0 && after.inventory.bucketGarbageBytes == 0)
        #expect(after.inventory.bucketEvents == 198 * 30 + 2)
        let names = StoreVerifier(directory: FilePath(path)).catalogNames()
        let withFiles = after.inventory.fileByNumber.enumerated().compactMap { $0.element == nil ? nil : names[$0.offset] }
        // The large stream, and those whose history no longer starts at version 0: the trimmed one,
        // and the deleted one (its last event stays, as the anchor of its versions).
        #expect(withFiles.sorted() == ["large", "s-3", "s-4"])

        // The engine continues the compacted chains.
        let store = try await EventStore.open(at: path, configuration: Self.configuration)
        for i in 0..<4_000 {
            let pad = (0..<4).map { _ in UUID().uuidString }.joined()
            _ = try await store.append(to: "s-\(i % 200)", events: [EventData(type: "t", json: "{\"again\":\(i),\"pad\":\"\(pad)\"}")])
        }
        await store.splitter.checkpointForTesting()
        try await waitUntil("the mover to empty a segment") { store.splitter.mover.segmentsDeleted.load(ordering: .relaxed) > 0 }
        try await store.close()
        let grown = try await AdminFixture.visible(at: path)
        let again = try Self.verify(path)
        #expect(again.isClean, "\(again.problems.prefix(5))")

        // With buckets off, compaction gives every stream a file of its own.
        let plain = try MaintenanceSession(directory: path, configuration: .filePerStream())
        let unbucketed = try await plain.compact(options: CompactOptions())
        plain.close()
        #expect(unbucketed.streamsBucketed == 0)
        #expect(!FileManager.default.fileExists(atPath: path + "/streams/buckets"))
        #expect(try await AdminFixture.visible(at: path) == grown)
        #expect(try Self.verify(path).isClean)
    }

    /// A compaction from bucket files into new ones, stopped at each step as a crash
    /// would stop it, or cut by a power loss anywhere (unsynced changes kept or lost at
    /// random): the store left opens, verifies clean and reads as before.
    @Test func aCrashOrPowerCutAnywhereInACompactionLeavesTheOldOrTheNewStore() async throws {
        let dir = TemporaryDirectory()
        let base = dir.child("base")
        try await Self.build(at: base)
        let before = try await AdminFixture.visible(at: base)
        for step in CompactionStep.allCases {
            // The session's configuration is the default: buckets on, as in `configuration`.
            let path = dir.child("crash-\(step.hashValue.magnitude)")
            let session = try await AdminFixture.compactionStopped(at: step, copying: base, to: path)
            session.close()
            #expect(try await AdminFixture.visible(at: path) == before, "after a crash at: \(step.rawValue)")
            try AdminFixture.expectVerifiesClean(at: path, "after a crash at: \(step.rawValue)")
        }
        let counted = try await AdminPowerLossTests.expectPowerCutsLeaveTheOldOrTheNewStore(
            base: base, in: dir, options: CompactOptions(), before: before, configuration: Self.configuration)
        #expect(counted.streamsBucketed == 200)
    }

    /// The mover's moves into bucket files cut by a power loss at each of their
    /// operations (unsynced writes kept, lost or torn at random): `verify` finds
    /// nothing wrong in the store left, before any open (what a cut leaves in a
    /// bucket file is harmless in a store not closed cleanly), and opening it reads
    /// every event as before.
    @Test func aStoreAPowerCutLeftDuringMovesIntoBucketsVerifiesClean() async throws {
        let dir = TemporaryDirectory()
        let template = dir.child("template")
        let store = try await EventStore.open(at: template, configuration: Self.configuration)
        for i in 0..<600 {
            _ = try await store.append(to: "s-\(i % 20)", events: [EventData(type: "t", json: "{\"n\":\(i),\"pad\":\"\(UUID().uuidString)\"}")])
        }
        try await store.close()
        let before = try await AdminFixture.visible(at: template)
        let profiles = [
            PowerLossProfile(writeSurvival: 0.5, tearing: 0.5, directorySurvival: 0.5),
            PowerLossProfile(writeSurvival: 1, tearing: 0, directorySurvival: 0),
        ]
        let rounds = PowerCutRounds(directory: dir, template: template, configuration: Self.configuration, profiles: profiles)
        let kinds = try await rounds.run({ store in try store.splitter.mover.moveEverything() }, check: { after, context in
            let report = try Self.verify(after)
            #expect(report.isClean, "\(context): \(report.problems.prefix(5))")
            #expect(try await AdminFixture.visible(at: after) == before, "\(context)")
            // Opened and closed again: nothing of the cut is left that is not harmless in a clean store.
            let recovered = try Self.verify(after)
            #expect(recovered.isClean, "\(context), after an open: \(recovered.problems.prefix(5))")
        })
        #expect(kinds.count >= 20, "a write per stream into its bucket, and the batch's syncs")
    }

    /// A flipped byte in a chain entry breaks the chain: `verify` names the bucket
    /// file and the entry's offset, and the versions the chain no longer reaches.
    @Test func aFlippedByteInABucketEntryIsNamedWithItsOffset() async throws {
        let dir = TemporaryDirectory()
        let path = dir.child("store")
        try await Self.build(at: path)
        // The first entry of a small stream's chain (the large stream's chain is garbage: damage there loses nothing).
        let session = try MaintenanceSession(directory: path, configuration: Self.configuration)
        var lines: [String] = []
        try session.dump(MaintenanceSession.DumpOptions(stream: "s-0", json: true)) { lines.append($0) }
        session.close()
        let line = try #require(lines.first { $0.contains("\"file\":\"streams/buckets/") })
        let entry = try #require(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        let name = try #require((entry["file"] as? String)?.split(separator: "/").last.map(String.init))
        let first = try #require((entry["offset"] as? NSNumber)?.uint64Value)
        for (kind, offset) in [("payload", first + UInt64(SplitSegment.envelopeSize + StreamBlock.headerSize + 5)), ("envelope", first + 6)] {
            let copy = dir.child("copy-\(kind)")
            try AdminFixture.copy(path, to: copy)
            try AdminFixture.flip("\(copy)/streams/buckets/\(name)", at: offset)
            let report = try Self.verify(copy)
            let named = report.problems.filter { $0.file == "streams/buckets/\(name)" }
            #expect(named.contains { $0.offset == first }, "\(kind): \(report.findings.prefix(8))")
            #expect(!report.isClean)
            // A bucket file holds many streams: --skip-damaged does not carry it over, compaction refuses.
            let session = try MaintenanceSession(directory: copy, configuration: Self.configuration)
            await #expect(throws: RingstoreError.self) { _ = try await session.compact(options: CompactOptions(skipDamaged: true)) }
            session.close()
        }
    }

    /// What a crash leaves in a bucket file for good — a chain entry written again
    /// after the first write of it was cut — is harmless garbage, and compaction drops it.
    @Test func anEntryOnNoChainIsHarmlessWhileTheStreamHoldsItsVersions() async throws {
        let dir = TemporaryDirectory()
        let path = dir.child("store")
        try await Self.build(at: path)
        let folder = path + "/streams/buckets"
        let name = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".seg") }.sorted()[0]
        let file = folder + "/" + name
        let first = try SplitSegment.firstEntryOffset(of: file)
        // The file's first entry starts a chain (version 0): a copy of it at the end continues none.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: file))
        let length = Int(bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: Int(first) + 16, as: UInt32.self) })
        let entry = bytes[Int(first)..<(Int(first) + SplitSegment.envelopeSize + length)]
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: file))
        try handle.seekToEnd()
        try handle.write(contentsOf: entry)
        try handle.close()
        let report = try Self.verify(path)
        #expect(report.isClean, "\(report.problems.prefix(5))")
        let garbage = report.findings.filter { $0.file == "streams/buckets/\(name)" && $0.offset == UInt64(bytes.count) }
        #expect(garbage.count == 1 && garbage[0].harmless, "\(report.findings.prefix(5))")
        let visible = try await AdminFixture.visible(at: path)
        let session = try MaintenanceSession(directory: path, configuration: Self.configuration)
        _ = try await session.compact(options: CompactOptions())
        session.close()
        let after = try Self.verify(path)
        #expect(after.isClean && !after.findings.contains { $0.file.hasPrefix("streams/") }, "\(after.findings.prefix(5))")
        #expect(try await AdminFixture.visible(at: path) == visible)
    }
}
