import Foundation
import Synchronization
import Testing
@testable import Ringstore

@Suite struct ExpectedVersionTests {
    @Test func expectedVersionRules() async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        var error = await ringstoreError { try await store.append(to: "s", expectedVersion: .streamExists, events: [event("a")]) }
        #expect(error?.code == .wrongExpectedVersion)
        #expect(error?.currentVersion == nil)
        error = await ringstoreError { try await store.append(to: "s", expectedVersion: .exact(0), events: [event("a")]) }
        #expect(error?.code == .wrongExpectedVersion)

        try await store.append(to: "s", expectedVersion: .noStream, events: [event("a"), event("b")])
        error = await ringstoreError { try await store.append(to: "s", expectedVersion: .noStream, events: [event("c")]) }
        #expect(error?.code == .wrongExpectedVersion)
        #expect(error?.currentVersion == 1)
        #expect(error?.message.contains("is at version 1") == true)
        error = await ringstoreError { try await store.append(to: "s", expectedVersion: .exact(0), events: [event("c")]) }
        #expect(error?.currentVersion == 1)
        error = await ringstoreError { try await store.append(to: "s", expectedVersion: .exact(5), events: [event("c")]) }
        #expect(error?.currentVersion == 1)

        #expect(try await store.append(to: "s", expectedVersion: .streamExists, events: [event("c")]).firstVersion == 2)
        #expect(try await store.append(to: "s", expectedVersion: .exact(2), events: [event("d")]).firstVersion == 3)
        #expect(try await store.append(to: "s", expectedVersion: .any, events: [event("e")]).firstVersion == 4)
        #expect(try store.currentVersion(of: "s") == 4)
        #expect(try store.currentVersion(of: "other") == nil)
        try await store.close()
    }

    @Test func concurrentWritersToOneStreamEachVersionWonOnce() async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        try await store.append(to: "race", events: [event("seed")])
        // 32 tasks, each appending 10 events with optimistic concurrency, retrying on conflict.
        let conflicts = Counter()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<32 {
                group.addTask {
                    for i in 0..<10 {
                        while true {
                            let current = try store.currentVersion(of: "race")!
                            do {
                                try await store.append(to: "race", expectedVersion: .exact(current), events: [event("\(task)-\(i)")])
                                break
                            } catch let error as RingstoreError where error.code == .wrongExpectedVersion {
                                conflicts.add()
                            }
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let events = try await store.read(stream: "race").collect()
        #expect(events.count == 321)
        #expect(events.map(\.version) == Array(0..<321))
        #expect(Set(events.map(text)).count == 321, "no event written twice")
        try await store.close()
    }

    @Test func onlyOneOfManySimultaneousExactAppendsWins() async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        try await store.append(to: "one", events: [event("seed")])
        let winners = Counter()
        let losers = Counter()
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<64 {
                group.addTask {
                    do {
                        try await store.append(to: "one", expectedVersion: .exact(0), events: [event("\(task)")])
                        winners.add()
                    } catch let error as RingstoreError where error.code == .wrongExpectedVersion && error.currentVersion == 1 {
                        losers.add()  // refused for the right reason, seeing the winner's version
                    } catch {
                        Issue.record("unexpected \(error)")
                    }
                }
            }
        }
        #expect(winners.value == 1 && losers.value == 63)
        #expect(try await store.read(stream: "one").collect().map(\.version) == [0, 1])
        try await store.close()
    }
}

@Suite struct IdempotencyTests {
    @Test func retryWithExactVersionWritesNothingTwice() async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        try await store.append(to: "s", events: [event("seed")])
        let batch = [event("a"), event("b")]
        let first = try await store.append(to: "s", expectedVersion: .exact(0), events: batch)
        try await store.append(to: "s", events: [event("later")])
        let retry = try await store.append(to: "s", expectedVersion: .exact(0), events: batch)
        #expect(retry == first)
        #expect(try await store.read(stream: "s").collect().count == 4)
        // Same versions, different IDs: a real conflict.
        let error = await ringstoreError { try await store.append(to: "s", expectedVersion: .exact(0), events: [event("a"), event("b")]) }
        #expect(error?.code == .wrongExpectedVersion)
        try await store.close()
    }

    @Test func retryWithNoStreamAndAnyIsRecognised() async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        let created = [event("a")]
        let first = try await store.append(to: "n", expectedVersion: .noStream, events: created)
        #expect(try await store.append(to: "n", expectedVersion: .noStream, events: created) == first)

        let loose = [event("x"), event("y")]
        let appended = try await store.append(to: "n", events: loose)
        #expect(try await store.append(to: "n", events: loose) == appended)
        #expect(try await store.append(to: "n", expectedVersion: .streamExists, events: loose) == appended)
        #expect(try await store.read(stream: "n").collect().count == 3)

        // The first ID repeated with different companions is neither new nor a retry.
        let error = await ringstoreError { try await store.append(to: "n", events: [loose[0], event("z")]) }
        #expect(error?.code == .idempotencyConflict)
        #expect(try await store.read(stream: "n").collect().count == 3)
        try await store.close()
    }

    @Test func retriesAreRecognisedAfterTheEventsLeftTheRing() async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        let loose = [event("x"), event("y")]
        let exact = [event("e")]
        let first = try await store.append(to: "gone", events: loose)
        let second = try await store.append(to: "gone", expectedVersion: .exact(1), events: exact)
        // Wait until the splitter has checkpointed them out of the ring.
        try await waitUntil("the checkpoint to take the events out of the ring") { store.stats().eventsInJournal == 0 }
        #expect(try await store.append(to: "gone", events: loose) == first)
        #expect(try await store.append(to: "gone", expectedVersion: .exact(1), events: exact) == second)
        let error = await ringstoreError { try await store.append(to: "gone", events: [loose[0], event("other")]) }
        #expect(error?.code == .idempotencyConflict)
        #expect(try await store.read(stream: "gone").collect().count == 3)
        try await store.close()
    }

    @Test func retryIsRecognisedAfterReopen() async throws {
        let dir = TemporaryDirectory()
        let batch = [event("a"), event("b")]
        let first: AppendResult
        do {
            let store = try await EventStore.open(at: dir.path, configuration: .testing())
            first = try await store.append(to: "s", expectedVersion: .noStream, events: batch)
            try await store.close()
        }
        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        #expect(try await store.append(to: "s", expectedVersion: .noStream, events: batch) == first)
        #expect(try await store.read(stream: "s").collect().count == 2)
        try await store.close()
    }
}

@Suite struct StreamStateTests {
    /// The deleted flag shares a word with the next version: each keeps its value when the other changes.
    @Test func versionAndDeletedFlagAreIndependent() {
        var state = StreamState(nextVersion: 5)
        #expect(state.nextVersion == 5 && !state.deleted && state.currentVersion == 4 && state.ringFirstVersion == 5)
        state.deleted = true
        #expect(state.nextVersion == 5 && state.deleted)
        state.nextVersion = (1 << 63) - 1
        #expect(state.deleted && state.nextVersion == (1 << 63) - 1)
        state.deleted = false
        #expect(!state.deleted && state.nextVersion == (1 << 63) - 1)
        #expect(StreamState(nextVersion: 0, deleted: true).currentVersion == nil)
        #expect(MemoryLayout<StreamState>.stride == 16)
    }

    /// Releasing a stream's ring entries once they all left the ring frees
    /// their storage: the emptied arrays are handed back (for the writer to
    /// free outside its lock), a partly kept one is not.
    @Test func forgettingEveryRingEntryReleasesTheStorage() {
        var index = JournalIndex()
        index.record(stream: "s", at: nil, positions: [100, 200, 300], ids: [UUID(), UUID(), UUID()])
        index.record(stream: "t", at: nil, positions: [400], ids: [UUID()])
        #expect(index.streams["s"]?.ringFirstVersion == 0 && index.position(of: "s", version: 2) == 300)
        let seed = index.streams.hashSeed
        let both = ["s", "t", "never appended"].map { (name: $0, hash: StreamTable.hash($0, seed: seed)) }
        var released: [[StreamState.RingEntry]] = []
        index.forgetEntries(before: 250, of: both, released: &released)
        index.forgetEventPositions(before: 250)
        #expect(released.isEmpty, "s keeps one entry, t all of its")
        #expect(index.streams["s"]?.ringFirstVersion == 2 && index.position(of: "s", version: 1) == nil)
        #expect(index.position(of: "s", version: 2) == 300 && index.eventPositions == [300, 400])
        index.forgetEntries(before: 500, of: both, released: &released)
        index.forgetEventPositions(before: 500)
        #expect(released.map { $0.map(\.position) }.sorted { $0[0] < $1[0] } == [[300], [400]])
        #expect(index.streams["s"]?.entries.capacity == 0 && index.streams["t"]?.entries.capacity == 0)
        #expect(index.streams["s"]?.nextVersion == 3 && index.streams["s"]?.ringFirstVersion == 3)
        #expect(index.eventPositions.isEmpty)
    }
}
