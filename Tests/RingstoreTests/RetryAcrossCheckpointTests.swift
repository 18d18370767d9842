import Foundation
import Testing
@testable import Ringstore

/// Retries of appends that a checkpoint fell inside (part in the stream file,
/// part still in the ring), and retries after the store was reopened.
@Suite struct RetryAcrossCheckpointTests {
    /// One append per expected-version kind, each with its own stream: how it
    /// was appended, and the expected version its retry sends.
    static let kinds: [(name: String, seed: Bool, expected: ExpectedVersion)] = [
        ("exact", true, .exact(0)),
        ("no-stream", false, .noStream),
        ("any", true, .any),
        ("stream-exists", true, .streamExists),
    ]

    /// A checkpoint inside each append (the splitter's scan held at its sixth
    /// event): its first five events are in the stream file, the rest in the
    /// ring. The retry, with the same IDs and expected version, must succeed
    /// with the first result and write nothing; it used to be refused with
    /// `.wrongExpectedVersion` (`.exact`, `.noStream`) or `.idempotencyConflict`
    /// (`.any`, `.streamExists`). A retry with one ID changed is still refused.
    @Test func retryOfAnAppendSplitByACheckpointIsRecognised() async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        store.splitter.testing.scanLimit.store(0, ordering: .relaxed)  // nothing is split until the test says
        var batches: [String: (events: [EventData], result: AppendResult)] = [:]
        for kind in Self.kinds {
            if kind.seed { try await store.append(to: kind.name, events: [event("seed")]) }
            let events = (0..<10).map { event("\(kind.name)-\($0)") }
            batches[kind.name] = (events, try await store.append(to: kind.name, expectedVersion: kind.expected, events: events))
        }
        for kind in Self.kinds {
            let (events, first) = batches[kind.name]!
            // Checkpoint up to the append's sixth event: versions before it leave the ring.
            let middle = try #require(store.journal.writer.state.withLock {
                $0.index.position(of: kind.name, version: first.firstVersion + 5)
            })
            store.splitter.testing.scanLimit.store(middle, ordering: .relaxed)
            await store.splitter.checkpointForTesting()
            #expect(store.stats().checkpointPosition == middle, "\(kind.name)")
            let ringFirst = store.journal.writer.state.withLock { $0.index.streams[kind.name]?.ringFirstVersion }
            #expect(ringFirst == first.firstVersion + 5, "\(kind.name): the append is split by the checkpoint")

            let retry = try await store.append(to: kind.name, expectedVersion: kind.expected, events: events)
            #expect(retry == first, "\(kind.name)")
            var changed = events
            changed[7] = event("other")
            let error = await ringstoreError { try await store.append(to: kind.name, expectedVersion: kind.expected, events: changed) }
            let refusal: RingstoreError.Code = switch kind.expected {
            case .any, .streamExists: .idempotencyConflict
            default: .wrongExpectedVersion
            }
            #expect(error?.code == refusal, "\(kind.name)")
            changed = events
            changed[2] = event("other")  // in the part already in the stream file
            let early = await ringstoreError { try await store.append(to: kind.name, expectedVersion: kind.expected, events: changed) }
            #expect(early?.code == refusal, "\(kind.name)")
        }
        store.splitter.testing.scanLimit.store(.max, ordering: .relaxed)
        for kind in Self.kinds {
            let stored = try await store.read(stream: kind.name).collect()
            #expect(stored.count == (kind.seed ? 11 : 10), "\(kind.name): nothing written twice")
        }
        try await store.close()
    }

    /// The same after a crash: the header's checkpoint lies inside the append,
    /// so recovery finds only its second part in the ring.
    @Test func retryOfAnAppendSplitByTheCheckpointIsRecognisedAfterACrash() async throws {
        let dir = TemporaryDirectory()
        var results: [String: (events: [EventData], result: AppendResult)] = [:]
        for kind in Self.kinds {
            let store = try await EventStore.open(at: dir.path, configuration: .testing())
            store.splitter.testing.scanLimit.store(store.stats().checkpointPosition, ordering: .relaxed)
            if kind.seed { try await store.append(to: kind.name, events: [event("seed")]) }
            let events = (0..<10).map { event("\(kind.name)-\($0)") }
            let first = try await store.append(to: kind.name, expectedVersion: kind.expected, events: events)
            results[kind.name] = (events, first)
            let middle = try #require(store.journal.writer.state.withLock {
                $0.index.position(of: kind.name, version: first.firstVersion + 5)
            })
            store.splitter.testing.scanLimit.store(middle, ordering: .relaxed)
            await store.splitter.checkpointForTesting()
            #expect(store.stats().checkpointPosition == middle)
            await store.abandonForTesting()
        }
        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        for kind in Self.kinds {
            let (events, first) = results[kind.name]!
            #expect(try await store.append(to: kind.name, expectedVersion: kind.expected, events: events) == first, "\(kind.name)")
            #expect(try await store.read(stream: kind.name).collect().count == (kind.seed ? 11 : 10), "\(kind.name)")
        }
        try await store.close()
    }

    /// `.any` and `.streamExists` retries are recognised through the window of
    /// recent appends, which lived only in memory: after a restart the same
    /// append was stored twice. The window is refilled from the journal at
    /// open — from the appends after the checkpoint (recovery) and from those
    /// the ring still holds before it — so a retry after a crash, after a
    /// checkpoint and a crash, and after a clean close is recognised.
    @Test(arguments: ["crash", "checkpoint and crash", "clean close"])
    func anyRetryIsRecognisedAfterAReopen(how: String) async throws {
        let dir = TemporaryDirectory()
        let loose = (0..<3).map { event("loose-\($0)") }
        let other = event("t")
        let existing = (0..<2).map { event("exists-\($0)") }
        let first, second, third: AppendResult
        do {
            let store = try await EventStore.open(at: dir.path, configuration: .testing())
            try await store.append(to: "s", events: [event("seed")])
            first = try await store.append(to: "s", expectedVersion: .any, events: loose)
            second = try await store.append(to: "t", expectedVersion: .any, events: [other])
            third = try await store.append(to: "s", expectedVersion: .streamExists, events: existing)
            switch how {
            case "crash":
                await store.abandonForTesting()
            case "checkpoint and crash":
                await store.splitter.checkpointForTesting()
                #expect(store.stats().eventsInJournal == 0)
                await store.abandonForTesting()
            default:
                try await store.close()
            }
        }
        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        #expect(try await store.append(to: "s", expectedVersion: .any, events: loose) == first)
        #expect(try await store.append(to: "t", expectedVersion: .any, events: [other]) == second)
        #expect(try await store.append(to: "s", expectedVersion: .streamExists, events: existing) == third)
        // The first ID again with other companions: neither new nor a retry.
        let error = await ringstoreError { try await store.append(to: "s", events: [loose[0], event("other")]) }
        #expect(error?.code == .idempotencyConflict)
        #expect(try await store.read(stream: "s").collect().count == 6, "nothing written twice")
        #expect(try await store.read(stream: "t").collect().count == 1)
        try await store.close()
    }

    /// The window rebuilt at open holds the newest appends, at most
    /// `idempotencyWindow` of them, and only those the ring still holds: an
    /// append whose records a later lap of the ring wrote over is not there.
    @Test func theRebuiltWindowHoldsTheNewestAppendsTheRingStillHolds() async throws {
        let dir = TemporaryDirectory()
        var config = Configuration.testing(durability: .relaxed)  // a flush per append is not what this is about
        config.idempotencyWindow = 50
        var firstIDs: [UUID] = []
        do {
            let store = try await EventStore.open(at: dir.path, configuration: config)
            // About 2.5 laps of a 1 MiB ring in 1 KiB appends.
            let overhead = JournalRecord.eventLength(streamCount: 1, typeCount: 1, metadataCount: 0, dataCount: 0)
            for i in 0..<2560 {
                let e = EventData(type: "T", data: [UInt8](repeating: 1, count: 1024 - overhead), contentType: .binary)
                firstIDs.append(e.id)
                try await store.append(to: "s\(i % 7)", events: [e])
            }
            try await store.close()
        }
        let store = try await EventStore.open(at: dir.path, configuration: config)
        let window = store.journal.writer.state.withLock { s in firstIDs.map { s.window.lookup($0) != nil } }
        #expect(window.suffix(50).allSatisfy { $0 }, "the last 50 appends")
        #expect(window.dropLast(50).allSatisfy { !$0 }, "no older one")
        try await store.close()

        // A window larger than what the ring holds: everything since the last lap, nothing before it.
        config.idempotencyWindow = 10_000
        let reopened = try await EventStore.open(at: dir.path, configuration: config)
        let held = reopened.journal.writer.state.withLock { s in firstIDs.map { s.window.lookup($0) != nil } }
        #expect(held.suffix(900).allSatisfy { $0 }, "most of the last lap")
        #expect(held.prefix(1500).allSatisfy { !$0 }, "not what later laps wrote over")
        try await reopened.close()
    }

    /// A checkpoint over more streams than the writer forgets in one lock
    /// section (``JournalWriter/releaseSlice``): every stream's ring entries go,
    /// the checkpoint and the ring's list of positions move together, and each
    /// stream's retry and read then go to its stream file.
    @Test func aCheckpointOverManyStreamsForgetsEveryOneOfThem() async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        store.splitter.testing.scanLimit.store(0, ordering: .relaxed)  // one checkpoint for them all
        let streams = 2 * JournalWriter.releaseSlice + 37
        var appended: [(events: [EventData], result: AppendResult)] = []
        for i in 0..<streams {
            let events = [event("first \(i)"), event("second \(i)")]
            appended.append((events, try await store.append(to: "s\(i)", expectedVersion: .noStream, events: events)))
        }
        let inRing = store.journal.writer.state.withLock { $0.index.eventPositions.count }
        #expect(inRing == 2 * streams)
        store.splitter.testing.scanLimit.store(.max, ordering: .relaxed)
        await store.splitter.checkpointForTesting()
        let end = try #require(appended.last?.result.lastPosition)
        #expect(store.stats().checkpointPosition > end)
        let left = store.journal.writer.state.withLock { s in
            (s.index.eventPositions.count, (0..<streams).filter { s.index.streams["s\($0)"]?.entries.isEmpty != true })
        }
        #expect(left.0 == 0, "the ring lists no event any more")
        #expect(left.1.isEmpty, "streams that kept ring entries: \(left.1.prefix(10))")
        for (i, (events, first)) in appended.enumerated() {
            let retry = try await store.append(to: "s\(i)", expectedVersion: .noStream, events: events)
            #expect(retry == first, "s\(i)")
            let stored = try await store.read(stream: "s\(i)").collect()
            #expect(stored.map(\.id) == events.map(\.id), "s\(i)")
        }
        try await store.close()
    }
}
