import Foundation
import SystemPackage
import Testing
@testable import Ringstore

/// `compact` reads the split segments once from the device: a walk beside its
/// verification's, on a thread of its own, gathers their entries (in memory, or
/// routed to temporary files under a small budget). Damage met by the
/// verification still refuses the compaction, naming file
/// and offset, and leaves the store byte for byte as it was, without
/// `compact.new/`; a dry run writes nothing.
@Suite struct AdminOnePassTests {
    /// Every file of the store (relative path → bytes).
    static func snapshot(_ path: String) throws -> [String: Data] {
        var files: [String: Data] = [:]
        for relative in try FileManager.default.subpathsOfDirectory(atPath: path) {
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path + "/" + relative, isDirectory: &isFolder), !isFolder.boolValue,
                  relative != "LOCK" else { continue }
            files[relative] = try Data(contentsOf: URL(fileURLWithPath: path + "/" + relative))
        }
        return files
    }

    /// The offset and block length of the last entry of the segment file `name` of the store at `path`.
    static func lastEntry(in path: String, segment name: String) throws -> (offset: UInt64, blockLength: Int) {
        let number = try #require(SplitSegment.number(inFileName: name))
        let segment = try #require(try SplitSegment.open(number: number, in: FilePath(path + "/split")))
        var last: (UInt64, Int)? = nil
        _ = try segment.walk { visit in
            if case .entry(let offset, let envelope, _, _) = visit { last = (offset, envelope.blockLength) }
            return true
        }
        return try #require(last)
    }

    @Test(arguments: [UInt64(64 << 20), 4 << 10])
    func damageInASegmentEntryMetOnTheOneWalkRefusesAndChangesNothing(budget: UInt64) async throws {
        let dir = TemporaryDirectory()
        let path = dir.child("store")
        try await AdminFixture.build(at: path)
        let segments = try FileManager.default.contentsOfDirectory(atPath: path + "/split").filter { $0.hasSuffix(".seg") }.sorted()
        let name = try #require(segments.last, "the fixture has split segments")
        // The last entry of the last segment: everything before it was gathered already.
        let entry = try Self.lastEntry(in: path, segment: name)
        let payload = UInt64(SplitSegment.envelopeSize + StreamBlock.headerSize)
        try AdminFixture.flip(path + "/split/" + name, at: entry.offset + payload + UInt64(entry.blockLength - StreamBlock.headerSize) / 2)
        let before = try Self.snapshot(path)

        let session = try MaintenanceSession(directory: path)
        let error = await ringstoreError { _ = try await session.compact(options: CompactOptions(memoryBudget: budget)) }
        session.close()
        let message = error?.message ?? ""
        #expect(message.contains("split/\(name), offset \(entry.offset)"), "\(message)")
        #expect(message.contains("nothing was changed"), "\(message)")
        #expect(try Self.snapshot(path) == before, "the refused compaction changed the store")
        AdminFixture.expectNoLeftovers([CompactionSwitch.newFolder, CompactionSwitch.marker, CompactionSwitch.oldFolder], in: path,
                                       "a refused compaction")

        // --skip-damaged does not cover segments: refused the same way.
        let skipping = try MaintenanceSession(directory: path)
        let skipped = await ringstoreError {
            _ = try await skipping.compact(options: CompactOptions(skipDamaged: true, memoryBudget: budget))
        }
        skipping.close()
        #expect(skipped?.message.contains("split/\(name), offset \(entry.offset)") == true, "\(skipped?.message ?? "")")
        #expect(try Self.snapshot(path) == before)
        AdminFixture.expectNoLeftovers([CompactionSwitch.newFolder], in: path, "a refused compaction with --skip-damaged")
    }

    @Test(arguments: [UInt64(64 << 20), 4 << 10])
    func theOneWalkGathersTheSegmentsAndADryRunWritesNothing(budget: UInt64) async throws {
        let dir = TemporaryDirectory()
        let path = dir.child("store")
        try await AdminFixture.build(at: path)
        let visible = try await AdminFixture.visible(at: path)
        let before = try Self.snapshot(path)
        let drySession = try MaintenanceSession(directory: path)
        let dry = try await drySession.compact(options: CompactOptions(dryRun: true, memoryBudget: budget))
        drySession.close()
        // A dry run opens and closes the store (the close writes the journal's header slot and the
        // lock its holder's pid); everything else is as it was, and nothing of a compaction is left.
        let unchanged = { (files: [String: Data]) in files.filter { $0.key != "journal.ring" && $0.key != StoreLock.fileName } }
        #expect(unchanged(try Self.snapshot(path)) == unchanged(before), "a dry run changed the store")
        AdminFixture.expectNoLeftovers([CompactionSwitch.newFolder], in: path, "a dry run")

        let segmentBytes = try FileManager.default.contentsOfDirectory(atPath: path + "/split").reduce(UInt64(0)) {
            $0 + ((try FileManager.default.attributesOfItem(atPath: path + "/split/" + $1)[.size] as? NSNumber)?.uint64Value ?? 0)
        }
        let session = try MaintenanceSession(directory: path)
        let summary = try await session.compact(options: CompactOptions(memoryBudget: budget))
        session.close()
        // One pass over the segments in all, beside the verification's own, and counted as read:
        // the whole store by the verification, the segments again by the routing.
        #expect(summary.segmentPasses == 1, "\(summary)")
        #expect(segmentBytes > 0 && summary.bytesRead >= summary.totalBytesBefore + segmentBytes, "\(summary)")
        #expect(summary.eventsAfter == dry.eventsAfter && summary.blocksAfter == dry.blocksAfter, "\(summary) \(dry)")
        #expect(try await AdminFixture.visible(at: path) == visible)
        try AdminFixture.expectVerifiesClean(at: path, "after compacting at a budget of \(budget)")
        AdminFixture.expectNoLeftovers([CompactionSwitch.newFolder, CompactionSwitch.oldFolder, CompactionSwitch.marker], in: path,
                                       "a compaction")
    }

    /// The heads the routing's walk learns are the ones opening would rebuild by walking
    /// the segments, and the compaction's open takes them (``SplitSegments/Prepared``).
    @Test func theSegmentHeadsLearntByTheWalkAreTheOnesOpeningRebuilds() async throws {
        let dir = TemporaryDirectory()
        let path = dir.child("store")
        try await AdminFixture.build(at: path)
        let root = FilePath(path)
        let session = try MaintenanceSession(directory: path)
        defer { session.close() }
        let routing = SegmentRouting(folder: root.appending("scratch"), budget: 64 << 20)
        var verifier = StoreVerifier(directory: root)
        verifier.segmentSink = routing
        let report = verifier.verify()
        #expect(report.problems.isEmpty, "\(report.problems)")
        _ = try routing.finish()
        let prepared = try #require(routing.prepared, "a clean store closed cleanly: the walk stands for the open's")
        let checkpoint = try Journal.checkpoint(in: root)
        let numbers = try StorageDirectory.entries(of: root.appending("split")).compactMap(SplitSegment.number(inFileName:)).sorted()
        #expect(try SplitSegments.adopt(prepared, numbers: numbers, checkpoint: checkpoint, folder: root.appending("split")) != nil)
        // Elsewhere (another checkpoint, or other segments) it is not taken.
        #expect(try SplitSegments.adopt(prepared, numbers: numbers, checkpoint: checkpoint + 1, folder: root.appending("split")) == nil)
        #expect(try SplitSegments.adopt(prepared, numbers: numbers + [numbers.last! + 1], checkpoint: checkpoint,
                                        folder: root.appending("split")) == nil)
        let walked = try SplitSegments(root: root, checkpoint: checkpoint)
        let taken = try SplitSegments(root: root, checkpoint: checkpoint, prepared: prepared)
        #expect(report.inventory.catalogNames > 0)
        var withEntries = 0
        for number in 0..<UInt32(report.inventory.catalogNames + 2) {
            #expect(walked.head(of: number) == taken.head(of: number), "stream number \(number)")
            if walked.head(of: number) != nil { withEntries += 1 }
        }
        #expect(withEntries > 0)
        #expect(walked.checkpointedBoundary == taken.checkpointedBoundary)
    }

    /// A store not closed cleanly gathers nothing on its first walk (it is recovered and walked again).
    @Test func aStoreNotClosedCleanlyIsNotGatheredFrom() throws {
        let routing = SegmentRouting(folder: FilePath("/nonexistent/scratch"), budget: 64 << 20)
        #expect(!routing.begin(streams: 10, closedCleanly: false, checkpoint: 100, segmentFileBytes: 1 << 20))
        #expect(routing.prepared == nil)
    }

    /// The session's opens leave `compact.new/` to the compaction (it holds the walk's
    /// files), so a compaction that stopped part-way earlier in the same session is
    /// settled by the next one before anything is read: a dry run and a compaction
    /// in that session then see the store as before or as after, never half switched.
    @Test func aCompactionAfterOneThatStoppedInTheSameSessionSeesAWholeStore() async throws {
        let dir = TemporaryDirectory()
        let base = dir.child("base")
        try await AdminFixture.build(at: base)
        let visible = try await AdminFixture.visible(at: base)
        for step in CompactionStep.allCases {
            let path = dir.child("again-\(step.hashValue.magnitude)")
            let session = try await AdminFixture.compactionStopped(at: step, copying: base, to: path)
            let dry = try await session.compact(options: CompactOptions(dryRun: true, memoryBudget: 4 << 10))
            #expect(dry.eventsAfter > 0, "\(step.rawValue): \(dry)")
            let again = try await session.compact(options: CompactOptions(memoryBudget: 4 << 10))
            #expect(again.eventsAfter == dry.eventsAfter, "\(step.rawValue): \(again) \(dry)")
            session.close()
            #expect(try await AdminFixture.visible(at: path) == visible, "after: \(step.rawValue)")
            try AdminFixture.expectVerifiesClean(at: path, "after: \(step.rawValue)")
            AdminFixture.expectNoLeftovers([CompactionSwitch.newFolder, CompactionSwitch.oldFolder, CompactionSwitch.marker], in: path,
                                           "after: \(step.rawValue)")
        }
    }
}
