import Foundation
import Testing
@testable import Ringstore

@Suite struct StreamDeletionTests {
    private func readError(_ store: EventStore, _ stream: String) async -> RingstoreError.Code? {
        await ringstoreError { _ = try await store.read(stream: stream).collect() }?.code
    }

    private func versions(_ store: EventStore, _ stream: String) async throws -> [UInt64] {
        try await store.read(stream: stream).collect().map(\.version)
    }

    @Test func softDeletedStreamReadsAsNotFoundAndIsRecreatedAtItsNextVersion() async throws {
        let dir = TemporaryDirectory()
        var store = try await EventStore.open(at: dir.path, configuration: .testing())
        for i in 0..<5 { try await store.append(to: "cart", events: [event("\(i)")]) }
        try await store.append(to: "other", events: [event("x")])
        try await store.setStreamMetadata(StreamMetadata(maxCount: 3), for: "cart")

        let wrong = await ringstoreError { try await store.deleteStream("cart", expectedVersion: .exact(2)) }
        #expect(wrong?.code == .wrongExpectedVersion)
        #expect(wrong?.currentVersion == 4)
        try await store.deleteStream("cart", expectedVersion: .exact(4))
        #expect(await readError(store, "cart") == .streamNotFound)
        #expect(try store.streamNames() == ["other"])
        #expect(try await store.readAll().collect().map(\.stream) == ["other"])
        #expect(await ringstoreError { try await store.deleteStream("cart") }?.code == .streamNotFound)
        #expect(try store.streamMetadata(of: "cart").maxCount == 3, "other metadata is kept")

        // Survives a restart.
        try await store.close()
        store = try await EventStore.open(at: dir.path, configuration: .testing())
        #expect(await readError(store, "cart") == .streamNotFound)

        // Written again: continues at the next version, old events stay hidden.
        let recreated = try await store.append(to: "cart", expectedVersion: .exact(4), events: [event("5")])
        #expect(recreated.firstVersion == 5)
        #expect(try await versions(store, "cart") == [5])
        #expect(try store.streamNames() == ["cart", "other"])
        try await store.close()
        store = try await EventStore.open(at: dir.path, configuration: .testing())
        #expect(try await versions(store, "cart") == [5])
        try await store.close()
    }

    @Test func tombstonedStreamRefusesWritesAndSaysDeletedAcrossRestarts() async throws {
        let dir = TemporaryDirectory()
        var store = try await EventStore.open(at: dir.path, configuration: .testing())
        for i in 0..<3 { try await store.append(to: "gone", events: [event("\(i)")]) }
        let wrong = await ringstoreError { try await store.tombstoneStream("gone", expectedVersion: .exact(1)) }
        #expect(wrong?.code == .wrongExpectedVersion)
        #expect(try await versions(store, "gone") == [0, 1, 2], "a refused tombstone changes nothing")
        try await store.tombstoneStream("gone", expectedVersion: .exact(2))

        func expectDeleted(_ store: EventStore) async {
            let append = await ringstoreError { try await store.append(to: "gone", events: [event("late")]) }
            #expect(append?.code == .streamDeleted)
            #expect(append?.stream == "gone")
            #expect(await readError(store, "gone") == .streamDeleted)
            #expect(await ringstoreError { try await store.setStreamMetadata(StreamMetadata(maxCount: 1), for: "gone") }?.code == .streamDeleted)
            #expect(await ringstoreError { try await store.tombstoneStream("gone") }?.code == .streamDeleted)
            #expect(await ringstoreError { try await store.deleteStream("gone") }?.code == .streamDeleted)
            #expect(await ringstoreError { _ = try store.streamMetadata(of: "gone") }?.code == .streamDeleted)
            #expect((try? store.streamNames()) == [])
        }
        await expectDeleted(store)
        try await store.close()
        store = try await EventStore.open(at: dir.path, configuration: .testing())
        await expectDeleted(store)
        try await store.close()
    }

    @Test func tombstonesWrittenJustBeforeACrashHoldAfterRecovery() async throws {
        let dir = TemporaryDirectory()
        var store = try await EventStore.open(at: dir.path, configuration: .testing())
        try await store.append(to: "t", events: [event("0")])
        try await store.tombstoneStream("t")
        try await store.tombstoneStream("never-written")
        await store.abandonForTesting()
        // Recovery finds the streams and their tombstones in the ring.
        store = try await EventStore.open(at: dir.path, configuration: .testing())
        #expect(await ringstoreError { try await store.append(to: "t", events: [event("1")]) }?.code == .streamDeleted)
        #expect(await ringstoreError { try await store.append(to: "never-written", events: [event("1")]) }?.code == .streamDeleted)
        #expect(await readError(store, "never-written") == .streamDeleted)
        try await store.close()
    }

    @Test func deletesHoldAfterTheJournalWrapped() async throws {
        let dir = TemporaryDirectory()
        let configuration = Configuration.testing(capacity: 256 << 10)
        var store = try await EventStore.open(at: dir.path, configuration: configuration)
        for i in 0..<4 {
            try await store.append(to: "soft", events: [event("\(i)")])
            try await store.append(to: "hard", events: [event("\(i)")])
        }
        try await store.deleteStream("soft")
        try await store.tombstoneStream("hard")
        try await StreamMetadataTests.wrapJournal(store)
        try await store.close()

        // Neither the streams nor their metadata streams are in the ring now:
        // the writer learns of the tombstone from the metadata stream's file.
        store = try await EventStore.open(at: dir.path, configuration: configuration)
        #expect(store.stats().eventsInJournal == 0)
        #expect(await ringstoreError { try await store.append(to: "hard", expectedVersion: .exact(3), events: [event("4")]) }?.code == .streamDeleted)
        #expect(await readError(store, "hard") == .streamDeleted)
        #expect(await readError(store, "soft") == .streamNotFound)
        #expect(try await store.append(to: "soft", events: [event("4")]).firstVersion == 4)
        #expect(try await versions(store, "soft") == [4])
        #expect(!(try store.streamNames()).contains("hard"))
        try await store.close()
    }

    @Test func concurrentAppendsNeverLandAfterATombstone() async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        try await store.append(to: "race", events: [event("first")])
        let accepted = Counter()
        // Each writer appends until it is refused: so every one of them has an append
        // that comes after the tombstone, whatever the scheduling.
        let refused = try await withThrowingTaskGroup(of: Bool.self) { group in
            for writer in 0..<8 {
                group.addTask {
                    for i in 0..<100_000 {
                        do {
                            try await store.append(to: "race", events: [event("w\(writer)-\(i)")])
                            accepted.add()
                        } catch let error as RingstoreError where error.code == .streamDeleted {
                            return true
                        }
                    }
                    return false
                }
            }
            group.addTask {
                try await waitUntil("20 appends to be accepted") { accepted.value >= 20 }
                try await store.tombstoneStream("race")
                return true
            }
            return try await group.reduce(into: 0) { $0 += $1 ? 1 : 0 }
        }
        #expect(refused == 9, "every writer was refused once the tombstone was written")
        // Every acknowledged append is before the tombstone in the journal.
        let tombstone = try #require(try store.lastEvent(of: "$$race"))
        #expect(tombstone.type == "$streamDeleted")
        #expect(try store.currentVersion(of: "race") == UInt64(accepted.value))
        // (lastEvent reads the ring or the stream file, ignoring the deletion.)
        let lastRace = try #require(try store.lastEvent(of: "race"))
        #expect(lastRace.version == UInt64(accepted.value))
        #expect(lastRace.position < tombstone.position)
        try await store.close()
    }

    /// The tombstone's acknowledgement wakes the subscriber before the metadata
    /// cache knows of the tombstone (the tombstoning task is held in between,
    /// which blocks one thread of the concurrency pool for that moment): the
    /// subscriber sees the stream still open and waits again. Once the cache
    /// learns of it, the subscriber must be woken again and end, not wait for
    /// the next append to the store.
    @Test func aSubscriberThatLooksBeforeTheCacheKnowsOfTheTombstoneStillEnds() async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        try await store.append(to: "live", events: [event("0")])
        try await store.deleteStream("live")  // so the cache holds the stream's (soft-deleted) state
        try await store.append(to: "live", events: [event("1")])
        let outcome = Recorder<String>()
        let subscription = try store.subscribe(to: "live")
        let reader = Task {
            do {
                for try await _ in subscription {}
                outcome.append("ended without an error")
            } catch let error as RingstoreError where error.code == .streamDeleted {
                outcome.append("deleted")
            } catch {
                outcome.append("\(error)")
            }
        }
        let changes = store.journal.writer.acknowledger.changes
        try await waitUntil("the subscriber to wait after the live event") { changes.waiterCount == 1 }
        let before = changes.generation

        let pause = PausePoint()
        store.metadataWriteAcknowledged.install { pause.action() }
        defer { store.metadataWriteAcknowledged.remove() }
        let tombstoning = Task { try await store.tombstoneStream("live") }
        await pause.reached()
        // Woken by the acknowledgement, the subscriber looked and waits again.
        try await waitUntil("the subscriber to look again and wait") { changes.generation > before && changes.waiterCount == 1 }
        pause.release()
        try await tombstoning.value
        try await waitUntil("the subscription to end on the tombstone") { !outcome.values.isEmpty }
        #expect(outcome.values == ["deleted"])
        _ = await reader.value
        try await store.close()
    }

    @Test func streamSubscriptionsWaitOutASoftDeleteAndEndOnATombstone() async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        try await store.append(to: "live", events: [event("0"), event("1")])
        try await store.deleteStream("live")
        let subscription = try store.subscribe(to: "live")
        let seen = Recorder<String>()
        let reader = Task {
            for try await event in subscription { seen.append("\(event.version) \(text(of: event))") }
        }
        let changes = store.journal.writer.acknowledger.changes
        // It waits out the soft delete: the deleted events 0 and 1 are not shown.
        try await waitUntil("the subscriber to wait on the deleted stream") { changes.waiterCount == 1 }
        #expect(seen.values.isEmpty)
        // Written again: the new event is delivered live.
        try await store.append(to: "live", events: [event("2")])
        try await waitUntil("the subscriber to receive the new event and wait again") { seen.values.count == 1 && changes.waiterCount == 1 }
        // A tombstone ends it with an error.
        try await store.tombstoneStream("live")
        let ended = await ringstoreError { try await reader.value }
        #expect(ended?.code == .streamDeleted)
        #expect(ended?.stream == "live")
        #expect(seen.values == ["2 {\"v\":\"2\"}"], "only the event written after the soft delete, once")
        try await store.close()
    }
}
