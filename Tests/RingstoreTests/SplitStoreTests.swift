import Foundation
import SystemPackage
import Synchronization
import Testing
@testable import Ringstore

/// Reading and writing through ``SplitStore``: a stream's file continued by its
/// segment chain, moves into the file, and the mover deleting moved segments.
@Suite struct SplitStoreTests {
    struct Fixture {
        let dir = TemporaryDirectory("SplitStoreTests")
        let store: SplitStore

        init(segmentBytes: UInt64 = 64 << 20, blockCacheBytes: Int = 16 << 20) throws {
            let root = FilePath(dir.path)
            let directory = try StreamDirectory(root: root, maxOpenFiles: 64, blockCacheBytes: blockCacheBytes)
            store = try SplitStore(directory: directory, segments: try SplitSegments(root: root, checkpoint: 0, segmentBytes: segmentBytes),
                               catalog: try StreamCatalog(directory: root), compress: true)
        }

        func number(_ stream: String) -> UInt32 { store.catalog.register(stream) }
    }

    /// A raw block of `versions` of `stream` whose payload names the version.
    func block(_ stream: String, _ versions: Range<UInt64>) -> StreamBlock.RawBlock {
        var block = StreamBlock.RawBlock()
        for v in versions {
            let data = Array("{\"stream\":\"\(stream)\",\"version\":\(v)}".utf8)
            data.withUnsafeBytes { d in
                Array("Type".utf8).withUnsafeBytes { type in
                    block.add(version: v, position: 1000 * v, id: UUID().uuid, timestampNanoseconds: Int64(v), json: true,
                              type: type, metadata: UnsafeRawBufferPointer(start: nil, count: 0), data: d)
                }
            }
        }
        return block
    }

    func payloadVersions(_ events: [RecordedEvent], of stream: String) -> [UInt64] {
        events.map { event in
            #expect(String(decoding: event.data, as: UTF8.self) == "{\"stream\":\"\(stream)\",\"version\":\(event.version)}")
            #expect(event.stream == stream)
            return event.version
        }
    }

    /// `streams` streams ("stream-0" …) given one event each in each of
    /// `rounds` rounds (an entry each in the segments), the segments synced;
    /// their names, numbers, and each one's event IDs as read back.
    func fillRounds(_ f: Fixture, streams: Int, rounds: Int) throws -> (names: [String], numbers: [UInt32], ids: [String: [UUID]]) {
        let names = (0..<streams).map { "stream-\($0)" }
        let numbers = names.map(f.number)
        for round in 0..<rounds {
            let v = UInt64(round)
            try f.store.appendToSegments(zip(names, numbers).map { .init(number: $1, blocks: [block($0, v..<(v + 1))]) })
        }
        try f.store.segments.sync()
        var ids: [String: [UUID]] = [:]
        for name in names { ids[name] = try f.store.read(stream: name, from: 0, direction: .forwards, maxCount: 100).map(\.id) }
        return (names, numbers, ids)
    }

    @Test func aStreamReadsAcrossItsFileAndItsSegmentChainBothWays() throws {
        let f = try Fixture()
        let a = f.number("a")
        try f.store.writeToFile(stream: "a", number: a, blocks: [block("a", 0..<4)])
        try f.store.appendToSegments([.init(number: a, blocks: [block("a", 4..<6)])])
        try f.store.appendToSegments([.init(number: a, blocks: [block("a", 6..<7), block("a", 7..<9)])])
        #expect(try f.store.nextVersion(of: "a") == 9)
        #expect(try f.store.fileNextVersion(of: "a") == 4)
        func read(_ from: UInt64, _ direction: ReadDirection, _ max: Int) throws -> [UInt64] {
            payloadVersions(try f.store.read(stream: "a", from: from, direction: direction, maxCount: max), of: "a")
        }
        #expect(try read(0, .forwards, 100) == Array(0..<9))
        #expect(try read(2, .forwards, 3) == [2, 3, 4])
        #expect(try read(5, .forwards, 100) == [5, 6, 7, 8])
        #expect(try read(9, .forwards, 100) == [])
        #expect(try read(100, .backwards, 3) == [8, 7, 6])
        #expect(try read(5, .backwards, 100) == [5, 4, 3, 2, 1, 0])
        #expect(try read(3, .backwards, 2) == [3, 2])
        // A stream that is only in the segments (no file at all).
        let b = f.number("b")
        try f.store.appendToSegments([.init(number: b, blocks: [block("b", 0..<3)])])
        #expect(payloadVersions(try f.store.read(stream: "b", from: 1, direction: .forwards, maxCount: 10), of: "b") == [1, 2])
        #expect(try f.store.fileNextVersion(of: "b") == 0)
        #expect(try f.store.read(stream: "nothing", from: 0, direction: .forwards, maxCount: 10).isEmpty)
    }

    /// A backward read touches only the entries holding the versions it returns:
    /// with the chain's oldest entry damaged, the newest events still read, and a
    /// read reaching the damage reports it.
    @Test func aBackwardReadOfTheNewestEventsReadsOnlyTheirEntries() throws {
        let f = try Fixture(blockCacheBytes: 0)
        let a = f.number("a")
        for v in UInt64(0)..<10 { try f.store.appendToSegments([.init(number: a, blocks: [block("a", v..<(v + 1))])]) }
        // Damage the first entry's block (past its 32-byte envelope, after the file's header and dictionary).
        let segment = f.store.segments.folder.appending(SplitSegment.fileName(of: 1)).string
        let handle = try #require(FileHandle(forUpdatingAtPath: segment))
        try handle.seek(toOffset: try SplitSegment.firstEntryOffset(of: segment) + 32 + 8)
        try handle.write(contentsOf: Data(repeating: 0xA5, count: 16))
        try handle.close()
        func read(_ from: UInt64, _ direction: ReadDirection, _ max: Int) throws -> [UInt64] {
            payloadVersions(try f.store.read(stream: "a", from: from, direction: direction, maxCount: max), of: "a")
        }
        #expect(try read(100, .backwards, 1) == [9])
        #expect(try read(9, .backwards, 3) == [9, 8, 7])
        #expect(try read(4, .backwards, 4) == [4, 3, 2, 1])
        #expect(throws: RingstoreError.self) { try read(4, .backwards, 5) }
        #expect(throws: RingstoreError.self) { try read(0, .forwards, 100) }
    }

    @Test func writingToTheFileMovesTheChainFirstAndReadsAgreeBeforeAndAfter() throws {
        let f = try Fixture(blockCacheBytes: 0)
        let s = f.number("s")
        for round in 0..<5 {
            let v = UInt64(round * 2)
            try f.store.appendToSegments([.init(number: s, blocks: [block("s", v..<(v + 2))])])
        }
        let before = try f.store.read(stream: "s", from: 0, direction: .forwards, maxCount: 100)
        // The file gets the chain's ten versions joined, then the new ones; a block
        // overlapping what is stored is trimmed.
        let next = try f.store.writeToFile(stream: "s", number: s, blocks: [block("s", 10..<13)])
        #expect(next == 13)
        #expect(try f.store.fileNextVersion(of: "s") == 13)
        #expect(f.store.segments.head(of: s)?.entries == 0, "the whole chain moved; its link kept until the file is synced")
        f.store.segments.forgetMoved([s])
        #expect(f.store.segments.head(of: s) == nil)
        let after = try f.store.read(stream: "s", from: 0, direction: .forwards, maxCount: 100)
        #expect(after.map(\.id) == before.map(\.id) + after.suffix(3).map(\.id))
        #expect(payloadVersions(after, of: "s") == Array(0..<13))
        // Moving again finds nothing.
        #expect(try f.store.move(stream: "s", number: s) == nil)
        try f.store.appendToSegments([.init(number: s, blocks: [block("s", 13..<14)])])
        #expect(try f.store.move(stream: "s", number: s) == .file)
        #expect(payloadVersions(try f.store.read(stream: "s", from: 12, direction: .forwards, maxCount: 9), of: "s") == [12, 13])
    }

    /// A move that takes only the oldest segment's entries leaves the stream's
    /// next version where the segments end, not where the file now ends (it once
    /// remembered the file's end, and after a reopen the stream's last events
    /// seemed not to exist).
    @Test func aPartialMoveLeavesTheStreamsNextVersionAtTheSegmentsEnd() throws {
        let f = try Fixture(segmentBytes: 64)
        let s = f.number("s")
        try f.store.appendToSegments([.init(number: s, blocks: [block("s", 0..<2)])])
        try f.store.appendToSegments([.init(number: s, blocks: [block("s", 2..<3)])])
        let sizes = f.store.segments.segmentSizes()
        #expect(sizes.count == 2)
        // What a reopened store knows: nothing remembered yet.
        let fresh = try SplitStore(directory: f.store.directory, segments: f.store.segments, catalog: f.store.catalog, compress: true)
        #expect(try fresh.move(stream: "s", number: s, throughSegment: sizes[0].number) == .file)
        #expect(try fresh.fileNextVersion(of: "s") == 2)
        #expect(try fresh.nextVersion(of: "s") == 3)
        #expect(payloadVersions(try fresh.read(stream: "s", from: 0, direction: .forwards, maxCount: 10), of: "s") == [0, 1, 2])
    }

    @Test func theMoverEmptiesTheOldestSegmentIntoStreamFilesAndDeletesIt() async throws {
        let f = try Fixture(segmentBytes: 2048)
        let (names, _, ids) = try fillRounds(f, streams: 20, rounds: 6)
        let before = f.store.segments.segmentSizes()
        #expect(before.count >= 3)
        // Not covered by a checkpoint yet: nothing moves.
        let mover = try SegmentMover(store: f.store, policy: .init(budgetBytes: 1), owner: f.dir.path, paused: true)
        #expect(try mover.moveOldestSegmentIfDue() == false)
        f.store.segments.checkpointCompleted(through: f.store.segments.end)
        #expect(try mover.moveOldestSegmentIfDue())
        let after = f.store.segments.segmentSizes()
        #expect(after.map(\.number) == Array(before.map(\.number).dropFirst()))
        #expect(!FileManager.default.fileExists(atPath: f.dir.child("split/" + SplitSegment.fileName(of: before[0].number))))
        for name in names {
            #expect(try f.store.read(stream: name, from: 0, direction: .forwards, maxCount: 100).map(\.id) == ids[name])
            #expect(try f.store.fileNextVersion(of: name) >= 1)
        }
        // Every segment moved: all reads come from the files.
        while try mover.moveOldestSegmentIfDue() {}
        #expect(f.store.segments.segmentSizes().count == 1, "the current segment stays")
        for name in names {
            #expect(try f.store.read(stream: name, from: 0, direction: .forwards, maxCount: 100).map(\.id) == ids[name])
        }
        await mover.stop()
    }

    /// Emptying the oldest segment, the mover takes each of its streams'
    /// entries in newer segments along, up to where the budget ends; the newer
    /// segments are then emptied without moving anything again. A chain longer
    /// than ``SegmentMover/Policy/chainMoveBytes`` moves only the oldest's.
    @Test func emptyingTheOldestSegmentTakesEachStreamsEntriesThroughTheBudget() async throws {
        for chainMoveBytes in [UInt32(1 << 20), 0] {
            let f = try Fixture(segmentBytes: 2048)
            let (names, numbers, ids) = try fillRounds(f, streams: 20, rounds: 8)
            f.store.segments.checkpointCompleted(through: f.store.segments.end)
            let sizes = f.store.segments.segmentSizes()
            try #require(sizes.count >= 5)
            // The budget ends after the third segment.
            var policy = SegmentMover.Policy(budgetBytes: sizes.prefix(3).reduce(0) { $0 + $1.bytes })
            policy.chainMoveBytes = chainMoveBytes
            let mover = try SegmentMover(store: f.store, policy: policy, owner: f.dir.path, paused: true)
            #expect(mover.throughSegment(emptying: sizes[0].number) == sizes[2].number)
            let through = chainMoveBytes > 0 ? 2 : 0
            var expectedEnds: [UInt32: UInt64] = [:]
            let inOldest = try f.store.segments.lastVersions(in: sizes[0].number)
            for segment in sizes.prefix(through + 1) {
                for (stream, last) in try f.store.segments.lastVersions(in: segment.number) where inOldest[stream] != nil {
                    expectedEnds[stream] = max(expectedEnds[stream] ?? 0, last + 1)
                }
            }
            #expect(try mover.moveOldestSegmentIfDue())
            #expect(f.store.segments.segmentSizes().map(\.number) == Array(sizes.map(\.number).dropFirst()))
            for (name, number) in zip(names, numbers) {
                #expect(try f.store.fileNextVersion(of: name) == expectedEnds[number] ?? 0, "\(name), chains up to \(chainMoveBytes) bytes")
                #expect(try f.store.read(stream: name, from: 0, direction: .forwards, maxCount: 100).map(\.id) == ids[name])
            }
            if chainMoveBytes > 0 {
                // The second segment's entries of those streams are in their files already: nothing moves again.
                let movedBefore = f.store.movedEntries.load(ordering: .relaxed)
                let endsBefore = try names.map { try f.store.fileNextVersion(of: $0) }
                let secondsStreams = try f.store.segments.lastVersions(in: sizes[1].number).keys
                try #require(secondsStreams.allSatisfy { inOldest[$0] != nil })
                try mover.moveSegment(sizes[1].number)
                #expect(f.store.movedEntries.load(ordering: .relaxed) == movedBefore)
                #expect(try names.map { try f.store.fileNextVersion(of: $0) } == endsBefore)
                #expect(!f.store.segments.segmentSizes().contains { $0.number == sizes[1].number })
            }
            while try mover.moveOldestSegmentIfDue() {}
            for name in names {
                #expect(try f.store.read(stream: name, from: 0, direction: .forwards, maxCount: 100).map(\.id) == ids[name])
            }
            await mover.stop()
        }
    }

    /// Ripe streams and the sweep of the oldest segment take turns: with a
    /// stream ripening before every turn, the oldest segment is still emptied
    /// and deleted, a batch a turn (the sweep used to wait until no stream
    /// was ripe, which with many streams never came).
    @Test func theSweepOfTheOldestSegmentTakesTurnsWithRipeStreams() async throws {
        let f = try Fixture(segmentBytes: 2048)
        let (names, _, ids) = try fillRounds(f, streams: 20, rounds: 6)
        f.store.segments.checkpointCompleted(through: f.store.segments.end)
        let oldest = try #require(f.store.segments.segmentSizes().first).number
        let streamsInOldest = try f.store.segments.lastVersions(in: oldest).count
        try #require(streamsInOldest >= 4)
        var policy = SegmentMover.Policy(budgetBytes: 1)
        policy.batch = 2
        policy.minimumBatch = 2
        let mover = try SegmentMover(store: f.store, policy: policy, owner: f.dir.path, paused: true)
        var sweep: SegmentMover.Sweep?
        var ripened: [String] = []
        while f.store.segments.segmentSizes().first?.number == oldest {
            let name = "ripe-\(ripened.count)"
            try f.store.appendToSegments([.init(number: f.number(name), blocks: [block(name, 0..<1200)])])
            ripened.append(name)
            #expect(try mover.moveNextBatches(sweep: &sweep, yielding: false))
            try #require(ripened.count <= (streamsInOldest + 1) / 2, "the oldest segment is still there after \(ripened.count) turns")
        }
        #expect(sweep == nil)
        for name in ripened { #expect(try f.store.fileNextVersion(of: name) == 1200, "\(name) moved in its turn") }
        for name in names {
            #expect(try f.store.read(stream: name, from: 0, direction: .forwards, maxCount: 100).map(\.id) == ids[name])
        }
        await mover.stop()
    }

    /// The mover sizes its batches by how long their syncs take: syncs longer
    /// than the target halve the batch down to the minimum (a slow device gets
    /// small bursts in front of the journal), quick ones leave it at the most.
    @Test func theMoversBatchesShrinkWhenTheirSyncsAreSlow() async throws {
        for (target, expected) in [(Int64(0), 2), (Int64.max / 8, 8)] {
            let f = try Fixture(segmentBytes: 2048)
            let (names, _, ids) = try fillRounds(f, streams: 40, rounds: 4)
            f.store.segments.checkpointCompleted(through: f.store.segments.end)
            var policy = SegmentMover.Policy(budgetBytes: 1)
            policy.batch = 8
            policy.minimumBatch = 2
            policy.syncTargetNanoseconds = target
            let mover = try SegmentMover(store: f.store, policy: policy, owner: f.dir.path, paused: true)
            #expect(mover.currentBatch == 8)
            while try mover.moveOldestSegmentIfDue() {}
            #expect(mover.currentBatch == expected, "sync target \(target) ns")
            for name in names {
                #expect(try f.store.read(stream: name, from: 0, direction: .forwards, maxCount: 100).map(\.id) == ids[name])
            }
            await mover.stop()
        }
    }

    /// A switch the tests flip for the mover's view of the split.
    final class PressureSwitch: Sendable {
        let on = Atomic<Bool>(true)
    }

    final class StallCounter: Sendable {
        let count = Atomic<UInt64>(0)
    }

    /// While the split is under pressure the mover leaves ripe streams in the
    /// segments, unless they hold more than twice their budget; a round of ripe
    /// streams that the pressure stops after a batch hands the rest back.
    @Test func ripeStreamsWaitWhileTheSplitIsUnderPressureWithinTwiceTheBudget() async throws {
        let f = try Fixture()
        let names = (0..<3).map { "ripe-\($0)" }
        let numbers = names.map(f.number)
        // 1,200 events of about 60 raw bytes: each chain past a block's worth, ripe at once.
        try f.store.appendToSegments(zip(names, numbers).map { .init(number: $1, blocks: [block($0, 0..<1200)]) })
        try f.store.segments.sync()
        let budget = f.store.segments.totalBytes
        let pressure = PressureSwitch()
        // Under pressure from the start, within its budget: the mover's own thread moves
        // no ripe stream (and no segment: none is over the budget and covered by a checkpoint).
        let mover = try SegmentMover(store: f.store, policy: .init(budgetBytes: budget, batch: 1), owner: f.dir.path,
                                     splitUnderPressure: { pressure.on.load(ordering: .relaxed) }, paused: true)
        #expect(mover.mustYieldToSplit())

        // A round asked for anyway moves one batch (one stream), then gives the rest back.
        #expect(try mover.moveRipeStreams())
        #expect(try names.map { try f.store.fileNextVersion(of: $0) } == [1200, 0, 0])
        let handedBack = f.store.segments.takeRipe()
        #expect(handedBack == Set(numbers.dropFirst()))
        f.store.segments.returnRipe(handedBack)

        pressure.on.store(false, ordering: .relaxed)
        #expect(!mover.mustYieldToSplit(), "no pressure: the mover works")
        pressure.on.store(true, ordering: .relaxed)
        // More than twice the budget in the segments: the disk's space comes first.
        var more: [String] = []
        while f.store.segments.totalBytes <= 2 * budget {
            let name = "more-\(more.count)"
            more.append(name)
            try f.store.appendToSegments([.init(number: f.number(name), blocks: [block(name, 0..<1200)])])
        }
        #expect(!mover.mustYieldToSplit(), "over twice the budget: the mover works under pressure too")
        #expect(try mover.moveRipeStreams())
        #expect(try (names + more).map { try f.store.fileNextVersion(of: $0) } == Array(repeating: 1200, count: names.count + more.count))
        for name in names + more {
            #expect(payloadVersions(try f.store.read(stream: name, from: 0, direction: .forwards, maxCount: 2000), of: name) == Array(0..<1200))
        }
        await mover.stop()
    }

    /// The mover's share of the time follows the journal: a batch during which
    /// a journal sync stalled halves it, quiet batches grow it back.
    @Test func theMoversShareHalvesAfterBatchesDuringWhichTheJournalStalled() async throws {
        let f = try Fixture()
        let stalls = StallCounter()
        // One stream a batch; every batch sees the journal stall once more (read at its start and end).
        let policy = SegmentMover.Policy(budgetBytes: 1 << 40, busyShare: 0.25, batch: 1, minimumBatch: 1)
        let mover = try SegmentMover(store: f.store, policy: policy, owner: f.dir.path,
                                     journalStalls: { stalls.count.add(1, ordering: .relaxed).newValue })
        // Its thread stopped, a round asked for here takes no pauses (they end at once when stopping).
        // The streams ripen only then: its thread, started at once, would otherwise move them itself.
        await mover.stop()
        let names = (0..<4).map { "ripe-\($0)" }
        try f.store.appendToSegments(names.map { .init(number: f.number($0), blocks: [block($0, 0..<1200)]) })
        try f.store.segments.sync()
        #expect(mover.currentShare == 0.25)
        #expect(try mover.moveRipeStreams())
        // Four batches, each halving it: 0.25 / 16 is the minimum share.
        #expect(mover.currentShare == policy.minimumBusyShare)
        for name in names { #expect(try f.store.fileNextVersion(of: name) == 1200) }
    }
}
