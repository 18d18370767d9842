import Foundation
import Testing
@testable import Ringstore

/// `ringstore-admin verify`: a clean store is clean; one flipped byte in any kind of file is found, with file and offset.
@Suite struct AdminVerifyTests {
    @Test func cleanStoresVerifyCleanBeforeAndAfterCompaction() async throws {
        let dir = TemporaryDirectory()
        let store = dir.child("store")
        try await AdminFixture.build(at: store)
        let session = try MaintenanceSession(directory: store)
        let report = session.verify()
        #expect(report.problems.isEmpty, "\(report.problems)")
        #expect(report.inventory.events > 600)
        _ = try await session.compact(options: CompactOptions())
        let after = session.verify()
        #expect(after.problems.isEmpty, "\(after.problems)")
        session.close()
    }

    @Test func aStoreThatCrashedMidIngestVerifiesCleanAfterRecovery() async throws {
        let dir = TemporaryDirectory()
        let path = dir.child("store")
        let store = try await EventStore.open(at: path, configuration: .testing())
        for i in 0..<400 { _ = try await store.append(to: "c-\(i % 13)", events: [EventData(type: "t", json: "{\"i\":\(i)}")]) }
        await store.abandonForTesting()
        let crashed = try MaintenanceSession(directory: path).verify()
        #expect(crashed.problems.isEmpty, "a crashed store's tail is for recovery, not damage: \(crashed.problems)")
        try await EventStore.open(at: path, configuration: .testing()).close()
        let session = try MaintenanceSession(directory: path)
        let report = session.verify()
        #expect(report.findings.filter { !$0.harmless }.isEmpty, "\(report.findings)")
        #expect(report.inventory.closedCleanly)
        session.close()
    }

    /// A power cut while the segment mover copied a stream's entries into its
    /// file, before the file's sync, can leave the copy torn although the journal's
    /// checkpoint passed its events long ago. The segments still hold them, so
    /// opening cuts the copy: `verify` of the store as the cut left it calls it
    /// harmless, and after opening it is gone.
    @Test func aTornCopyOfSegmentEntriesIsHarmlessInAStoreNotClosedCleanly() async throws {
        let dir = TemporaryDirectory()
        let path = dir.child("store")
        let store = try await EventStore.open(at: path, configuration: .testing())
        for i in 0..<600 { _ = try await store.append(to: i % 3 == 0 ? "m" : "other-\(i % 40)", events: [EventData(type: "t", json: "{\"i\":\(i)}")]) }
        await store.splitter.checkpointForTesting()
        let events = try await store.read(stream: "m").collect()
        await store.abandonForTesting()
        let filePath = "\(path)/\(StreamNaming.relativePath("m").string)"
        #expect(!FileManager.default.fileExists(atPath: filePath), "m's events are in the split segments only")
        // The mover's copy of versions 0..<200, then a torn sector inside the block.
        try FileManager.default.createDirectory(atPath: (filePath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let file = try StreamFile.create(at: filePath, stream: "m")
        try file.append(events, compress: true)
        let offset = try #require(try file.blockOffsetsForTesting().first)
        file.close()
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: filePath))
        try handle.seek(toOffset: offset + UInt64(StreamBlock.headerSize) + 4)
        try handle.write(contentsOf: Data(count: 32))
        try handle.close()

        let session = try MaintenanceSession(directory: path)
        let cut = session.verify()
        session.close()
        let torn = try #require(cut.findings.first { $0.file.hasSuffix(".stream") })
        #expect(torn.harmless && torn.what.contains("split segments hold every version from 0"), "\(cut.findings)")
        #expect(cut.problems.isEmpty, "\(cut.problems)")
        let reopened = try await EventStore.open(at: path, configuration: .testing())
        #expect(try await reopened.read(stream: "m").collect().map(\.id) == events.map(\.id))
        try await reopened.close()
        let closed = try MaintenanceSession(directory: path)
        #expect(closed.verify().problems.isEmpty)
        closed.close()
    }

    /// In a store not closed cleanly, opening keeps the split segments up to the
    /// last entry that begins before the checkpoint and the global index up to
    /// its last intact entry before it, and cuts the rest (the journal supplies it
    /// again). Damage there, as a power cut leaves it, is harmless even where
    /// intact entries follow it; found as damage on stores the power-loss rounds
    /// left behind.
    @Test func damagePastTheCheckpointInSegmentsAndIndexIsHarmlessInAStoreNotClosedCleanly() async throws {
        let dir = TemporaryDirectory()
        let path = dir.child("store")
        let store = try await EventStore.open(at: path, configuration: .testing())
        for i in 0..<300 { _ = try await store.append(to: "s-\(i % 30)", events: [EventData(type: "t", json: "{\"i\":\(i)}")]) }
        await store.splitter.checkpointForTesting()
        store.splitter.testing.checkpointsHeld.store(true, ordering: .relaxed)  // not even after a quiet second
        for i in 0..<60 { _ = try await store.append(to: "r-\(i % 2)", events: [EventData(type: "t", json: "{\"r\":\(i)}")]) }
        // Reads ahead of the split: the splitter writes these streams' entries now, past the checkpoint.
        #expect(try await store.read(stream: "r-0").collect().count == 30)
        #expect(try await store.read(stream: "r-1").collect().count == 30)
        await store.abandonForTesting()

        let session = try MaintenanceSession(directory: path)
        let before = session.verify()
        var lines: [[String: Any]] = []
        try session.dump(.init(json: true)) { line in
            if let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] { lines.append(object) }
        }
        session.close()
        #expect(before.problems.isEmpty, "\(before.problems)")
        let checkpoint = before.inventory.checkpoint
        let past = lines.filter { ($0["stream"] as? String)?.hasPrefix("r-") == true && $0["file"] as? String != "journal.ring"
            && ($0["firstPosition"] as? NSNumber).map { $0.uint64Value >= checkpoint } == true }
        try #require(past.count >= 2, "two entries past the checkpoint, written for the readers: \(past)")
        let segment = try #require(past[0]["file"] as? String)
        let offset = try #require((past[0]["offset"] as? NSNumber)?.uint64Value)
        // The first of them lost (zeros, as a lost sector reads), the second intact behind it;
        // and the global index's last entry torn.
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: "\(path)/\(segment)"))
        try handle.seek(toOffset: offset)
        try handle.write(contentsOf: Data(count: 40))
        try handle.close()
        let indexSize = before.inventory.globalIndexBytes
        try AdminFixture.flip("\(path)/global.index", at: indexSize - 10)

        let damaged = try MaintenanceSession(directory: path)
        let report = damaged.verify()
        damaged.close()
        #expect(report.problems.isEmpty, "\(report.problems)")
        #expect(report.findings.contains { $0.file == segment && $0.offset == offset && $0.harmless }, "\(report.findings)")
        #expect(report.findings.contains { $0.file == "global.index" && $0.harmless && $0.what.contains("checksum") }, "\(report.findings)")
        // Opening agrees: every event is there.
        let reopened = try await EventStore.open(at: path, configuration: .testing())
        #expect(try await reopened.readAll().collect().count == 360)
        try await reopened.close()
    }

    /// Where to flip, per kind of file: (relative file, offset).
    private func targets(in store: String) throws -> [(String, String, UInt64)] {
        let session = try MaintenanceSession(directory: store)
        defer { session.close() }
        let inventory = session.verify().inventory
        var result: [(String, String, UInt64)] = []
        // The journal: both header slots, and a record just before the checkpoint (the ring's last lap).
        result.append(("header slot 0", "journal.ring", 20))
        result.append(("header slot 1", "journal.ring", 2048 + 33))
        let physical = inventory.checkpoint % inventory.capacity
        #expect(physical > 400)
        result.append(("journal record", "journal.ring", 4096 + physical - 300))
        result.append(("catalog", "streams.catalog", 13))
        result.append(("global index", "global.index", 24 * 7 + 3))
        // The large stream's file: block header, block payload, index entry.
        let large = "streams/" + (StreamNaming.relativePath("large").string.dropFirst("streams/".count))
        let headerLength = StreamFile.headerLength(nameBytes: 5)
        result.append(("block header", large, headerLength + 9))
        result.append(("block payload", large, headerLength + 48 + 1000))
        #expect(FileManager.default.fileExists(atPath: "\(store)/\(large).idx"), "the large stream has an index file")
        result.append(("index entry", large + ".idx", 16 * 3 + 1))
        return result
    }

    @Test func oneFlippedByteInEachKindOfFileIsFound() async throws {
        let dir = TemporaryDirectory()
        let base = dir.child("base")
        try await AdminFixture.build(at: base, largeStream: true)
        // Compact once, so that the large stream has full-size blocks and an index file.
        let session = try MaintenanceSession(directory: base)
        _ = try await session.compact(options: CompactOptions())
        session.close()
        // Then more one-event appends, so that split segments exist again.
        let store = try await EventStore.open(at: base, configuration: .testing())
        for i in 0..<300 { _ = try await store.append(to: "s-\(i % 40)", events: [EventData(type: "t", json: "{\"again\":\(i)}")]) }
        try await store.close()
        var all = try targets(in: base)
        let segments = try FileManager.default.contentsOfDirectory(atPath: base + "/split").filter { $0.hasSuffix(".seg") }.sorted()
        try #require(!segments.isEmpty, "the fixture has split segments")
        let first = try SplitSegment.firstEntryOffset(of: base + "/split/" + segments[0])
        all.append(("segment entry", "split/" + segments[0], first + UInt64(SplitSegment.envelopeSize + StreamBlock.headerSize + 5)))
        all.append(("segment envelope", "split/" + segments[0], first + 6))
        all.append(("segment dictionary", "split/" + segments[0], UInt64(SplitSegment.headerSize + 8 + 3)))
        for (i, (kind, file, offset)) in all.enumerated() {
            let copy = dir.child("copy-\(i)")
            try AdminFixture.copy(base, to: copy)
            try AdminFixture.flip("\(copy)/\(file)", at: offset)
            let check = try MaintenanceSession(directory: copy)
            let report = check.verify()
            check.close()
            // A record of the ring's last lap before the checkpoint is a copy of what the
            // stream files hold (a crash leaves that part torn in the normal course of
            // things): named, as harmless.
            let named = (kind == "journal record" ? report.findings : report.problems).filter { $0.file == file }
            #expect(!named.isEmpty, "\(kind): a flipped byte in \(file) at \(offset) was not found; findings: \(report.findings)")
            #expect(named.contains { $0.offset != nil }, "\(kind): \(named)")
        }
    }

    @Test func theCommandLinePrintsOneLinePerProblemAndExits1() async throws {
        let dir = TemporaryDirectory()
        let store = dir.child("store")
        try await AdminFixture.build(at: store)
        let (clean, _, _) = try AdminFixture.run(["verify", store])
        #expect(clean == 0)
        try AdminFixture.flip("\(store)/global.index", at: 24 * 2 + 1)
        let (status, output, _) = try AdminFixture.run(["verify", store])
        #expect(status == 1)
        #expect(output.contains("global.index, offset 48,"), "\(output)")
    }
}
