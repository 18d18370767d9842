import Foundation
import Synchronization
import Testing
@_spi(FaultTesting) @testable import Ringstore

/// The split segments' limit: past three times their budget (counting what a
/// checkpoint covers), checkpoints wait for the segment mover, so the ring
/// stops freeing space and appends wait, instead of the segments growing
/// without bound when the mover cannot keep up; once it moves again the
/// ingest goes on, and every acknowledged event is there exactly once.
@Suite struct SegmentHoldTests {
    static let capacity: UInt64 = 256 << 10

    /// A 256 KiB ring and a 64 KiB budget: segments of 256 KiB (their least),
    /// the limit 192 KiB of covered segments, reached after a few checkpoints.
    static var configuration: Configuration {
        var configuration = Configuration.testing(capacity: capacity)
        configuration.splitSegmentBudget = 64 << 10
        return configuration
    }

    /// Append `i` of a workload over 40 streams: ten events of random hex, so
    /// that the segments fill (a repeated letter compresses to nothing).
    static func batch(_ i: Int) -> (stream: String, events: [EventData]) {
        ("s-\(i % 40)", (0..<10).map { j in event("event \(i).\(j) " + (0..<4).map { _ in UUID().uuidString }.joined()) })
    }

    /// Waits until checkpoints wait for the mover and appends for ring space.
    static func waitForTheHold(_ store: EventStore) async throws {
        try await waitUntil("checkpoints to wait for the mover and the ring to fill") {
            let stats = store.stats()
            return stats.splitSegmentHolds >= 1 && store.splitter.mover.holdsCheckpoints
                && stats.journalBytesInUse > capacity * 3 / 4 && stats.appendsWaitedForSpace >= 1
        }
    }

    @Test func segmentsPastTheirLimitHoldTheIngestUntilTheMoverCatchesUp() async throws {
        let dir = TemporaryDirectory()
        let (capacity, configuration) = (Self.capacity, Self.configuration)
        let store = try await EventStore.open(at: dir.path, configuration: configuration)
        let mover = store.splitter.mover
        mover.suspendMoving()  // running, but slower than any ingest

        let acknowledged = Mutex<[String: [UUID]]>([:])
        // Far more than the limit and the ring together (about 4 MB of events),
        // so that without the hold the segments would grow past any bound checked below.
        let appender = Task { () async -> RingstoreError? in
            for i in 0..<2_000 {
                let (stream, events) = Self.batch(i)
                do {
                    try await store.append(to: stream, events: events)
                    acknowledged.withLock { $0[stream, default: []].append(contentsOf: events.map(\.id)) }
                } catch {
                    return error as? RingstoreError
                }
            }
            return nil
        }
        try await Self.waitForTheHold(store)
        #expect(store.splitter.whyCheckpointsWait != nil)
        let policy = mover.policy
        let held = store.stats()
        #expect(held.splitSegmentBytes > policy.holdBytes, "the segments passed their limit")
        #expect(held.splitSegmentBytes <= policy.holdBytes + 3 * capacity,
                "the segments stay within their limit and what a checkpoint and the ring add (\(held.splitSegmentBytes) bytes)")

        // The appender waits for ring space; a short wait makes its append fail, naming the hold.
        store.setJournalFullWait(.milliseconds(50))
        let refusal = try #require(await appender.value, "an append waiting for ring space fails once its wait passes")
        #expect(refusal.code == .journalFull)
        #expect(refusal.message.contains("the segment mover has yet to move"), "\(refusal.message)")

        // The mover catches up: the hold ends and appends go on.
        store.setJournalFullWait(generousWait)
        mover.resumeMoving()
        for i in 2_000..<2_300 {
            let (stream, events) = Self.batch(i)
            try await store.append(to: stream, events: events)
            acknowledged.withLock { $0[stream, default: []].append(contentsOf: events.map(\.id)) }
        }
        #expect(mover.segmentsDeleted.load(ordering: .relaxed) >= 1)

        let expected = acknowledged.withLock { $0 }
        let total = expected.values.reduce(0) { $0 + $1.count }
        for (stream, ids) in expected {
            #expect(try await store.read(stream: stream).collect().map(\.id) == ids, "\(stream)")
        }
        #expect(try await store.readAll().collect().count == total)
        try await store.close()
        let reopened = try await EventStore.open(at: dir.path, configuration: configuration)
        for (stream, ids) in expected {
            #expect(try await reopened.read(stream: stream).collect().map(\.id) == ids, "reopened: \(stream)")
        }
        #expect(try await reopened.readAll().collect().count == total)
        try await reopened.close()
        try AdminFixture.expectVerifiesClean(at: dir.path, "after the hold")
    }

    /// While checkpoints wait for the mover, a sweep moves each stream's whole
    /// chain (not only what lies within the budget) in batches of
    /// `Policy.heldBatch`, on several threads: one pass over the streams frees
    /// every segment it can. (Four lanes here whatever the machine has, and in
    /// the ThreadSanitizer run.) With `buckets`, the streams' chains go into
    /// their bucket files, four lanes appending to them side by side.
    @Test(arguments: [false, true])
    func aSweepWhileHeldTakesEachStreamsWholeChain(buckets: Bool) async throws {
        let dir = TemporaryDirectory()
        // Segments of 256 KiB against a budget of 64 KiB: within the budget lies the oldest alone.
        var configuration = Self.configuration
        configuration.streamBuckets = buckets
        let store = try await EventStore.open(at: dir.path, configuration: configuration)
        let mover = store.splitter.mover
        mover.suspendMoving()
        let streams = (0..<40).map { "s-\($0)" }
        let appender = Task {
            for i in 0..<2_000 {
                let (stream, events) = Self.batch(i)
                guard (try? await store.append(to: stream, events: events)) != nil else { return }
            }
        }
        try await Self.waitForTheHold(store)
        #expect(mover.currentBatch == max(mover.heldBatchLimit, mover.policy.batch))
        let segments = store.split.segments
        #expect(segments.segmentSizes().count >= 2, "the oldest, and newer entries past the budget")
        // What the segments hold of each stream before the sweep (entries added later do not matter).
        var heldUpTo: [String: UInt64] = [:]
        for name in streams {
            if let number = store.catalog.number(of: name), let head = segments.head(of: number) { heldUpTo[name] = head.segmentNext }
        }
        let oldest = try #require(segments.segmentSizes().first)
        var sweep = try mover.startSweep(oldest.number, urgent: true)
        while try !mover.continueSweep(&sweep, heldLanes: 4) {}
        #expect(!segments.segmentSizes().contains { $0.number == oldest.number })
        for (name, next) in heldUpTo {
            #expect(try store.split.movedNextVersion(of: name) >= next, "\(name): its whole chain is in its file or bucket")
            #expect(try store.split.fileNextVersion(of: name) == 0 || !buckets, "\(name): a small stream gets no file")
        }
        mover.resumeMoving()
        await appender.value
        try await store.close()
        guard buckets else { return try AdminFixture.expectVerifiesClean(at: dir.path, "after the sweep") }
        // Every stream reads back whole (versions from 0, none twice), and `$all` holds them all.
        let reopened = try await EventStore.open(at: dir.path, configuration: configuration)
        var total = 0
        for name in streams {
            let versions = try await reopened.read(stream: name).collect().map(\.version)
            #expect(versions == Array(0..<UInt64(versions.count)), "\(name)")
            total += versions.count
        }
        #expect(try await reopened.readAll().collect().count == total)
        try await reopened.close()
    }

    /// The stream-file ends a sweep saw carry over to the next sweep: once a
    /// held sweep has taken every stream's whole chain, the newer segments'
    /// sweeps find nothing to move and check that nothing is left behind
    /// without looking up any file's end again. An end carried from before a
    /// later move (lower than the file's end now) is looked up in the file,
    /// not taken for an entry left behind.
    @Test func theNextSweepsCheckAgainstTheFileEndsTheLastOneSaw() async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: Self.configuration)
        let mover = store.splitter.mover
        mover.suspendMoving()
        let appender = Task {
            for i in 0..<2_000 {
                let (stream, events) = Self.batch(i)
                guard (try? await store.append(to: stream, events: events)) != nil else { return }
            }
        }
        try await Self.waitForTheHold(store)
        store.setJournalFullWait(.milliseconds(1))
        await appender.value  // its waiting append failed: nothing more is appended
        store.setJournalFullWait(generousWait)
        await store.splitter.checkpointForTesting()  // everything acknowledged is in the segments now

        let segments = store.split.segments
        let numbers = segments.segmentSizes().map(\.number)
        try #require(numbers.count >= 2, "the oldest segment, and newer ones to sweep after it")
        // A sweep of a segment the splitter no longer writes checks against the
        // listing it began with, which must say what walking the segment says.
        #expect(!segments.isBeingWritten(numbers[0]))
        let listed = SplitSegments.lastVersions(in: try segments.locateEntries(in: numbers[0]))
        let walked = try segments.lastVersions(in: numbers[0])
        #expect(!listed.isEmpty && listed == walked)
        var sweep = try mover.startSweep(numbers[0], urgent: true)
        while try !mover.continueSweep(&sweep, heldLanes: 2) {}
        let carried = mover.carriedFileEnds.withLock { $0 }
        #expect(!carried.isEmpty, "the sweep hands the ends it saw on")
        #expect(mover.fileEndsLookedUp.load(ordering: .relaxed) == 0, "every end the sweep checked against, its moves saw")

        // Ends seen before later moves: lowered to 1 for half of the streams whose whole
        // chain is in their files (a stream with a chain left would be moved, and report its end).
        let streamNumbers = (0..<40).compactMap { store.catalog.number(of: "s-\($0)") }
        let lowered = Set(streamNumbers.filter { $0 % 2 == 0 && carried[$0] != nil && segments.head(of: $0) == nil })
        mover.carriedFileEnds.withLock { ends in for stream in lowered { ends[stream] = 1 } }
        // Each lowered stream is looked up once, by the first segment whose check it fails.
        var inLater: Set<UInt32> = []
        for number in numbers.dropFirst() {
            for (stream, last) in try segments.lastVersions(in: number) where last >= 1 { inLater.insert(stream) }
        }
        let lookedUp = lowered.intersection(inLater).count
        try #require(lookedUp >= 1, "the newer segments hold entries of streams whose ends were lowered")
        for number in numbers.dropFirst() { try mover.moveSegment(number) }
        #expect(segments.segmentSizes().isEmpty, "every segment swept and deleted; no entry taken for one left behind")
        #expect(mover.fileEndsLookedUp.load(ordering: .relaxed) == UInt64(lookedUp),
                "only the lowered ends were looked up, once each")

        mover.resumeMoving()
        try await store.close()
        try AdminFixture.expectVerifiesClean(at: dir.path, "after the sweeps")
    }

    /// A held batch moves up to 1,024 streams, but no more than a quarter of
    /// the open-file cache's descriptors (so that none of its files is closed
    /// before its sync), and never fewer than 256.
    @Test(arguments: [(65_536, 1_024), (20_000, 1_024), (4_096, 1_024), (2_000, 500), (1_024, 256), (512, 256), (256, 256)])
    func aHeldBatchFitsInAQuarterOfTheOpenFileCache(openFiles: Int, streams: Int) {
        let policy = SegmentMover.Policy(budgetBytes: 64 << 10)
        #expect(policy.heldBatchSize(openFiles: openFiles) == streams, "\(openFiles) descriptors")
    }

    /// A paused mover (tests that keep segments around) holds nothing back:
    /// nothing would end the hold.
    @Test func aPausedMoverHoldsNothingBack() async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: Self.configuration)
        store.splitter.mover.pause()
        for i in 0..<600 {
            let (stream, events) = Self.batch(i)
            try await store.append(to: stream, events: events)
        }
        await store.splitter.checkpointForTesting()
        #expect(store.split.segments.checkpointedBytes > store.splitter.mover.policy.holdBytes)
        #expect(!store.splitter.mover.holdsCheckpoints)
        #expect(store.stats().splitSegmentHolds == 0)
        try await store.close()
    }
}
