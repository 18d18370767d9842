import Foundation
import Testing
@testable import Ringstore

@Suite struct SnapshotTests {
    @Test func theLastSnapshotIsLoadedAcrossRestartsAndJournalWraps() async throws {
        let dir = TemporaryDirectory()
        let configuration = Configuration.testing(capacity: 256 << 10)
        var store = try await EventStore.open(at: dir.path, configuration: configuration)
        #expect(try store.loadSnapshot(of: "account") == nil)
        for i in 0..<10 { try await store.append(to: "account", events: [event("\(i)")]) }
        try await store.saveSnapshot(of: "account", version: 4, data: Array("balance=4".utf8))
        try await store.saveSnapshot(of: "account", version: 9, data: Array("balance=9".utf8))
        func expectLatest(_ store: EventStore) throws {
            let snapshot = try #require(try store.loadSnapshot(of: "account"))
            #expect(snapshot.stream == "account")
            #expect(snapshot.version == 9)
            #expect(snapshot.data == Array("balance=9".utf8))
            #expect(snapshot.timestampNanoseconds > 0)
        }
        try expectLatest(store)
        // Only the last one shows in the snapshot stream, and none in $all.
        #expect(try await store.read(stream: "$snapshot-account").collect().map(\.version) == [1])
        #expect(try await store.readAll().collect().allSatisfy { $0.stream == "account" })
        #expect(try store.streamNames() == ["account"])

        try await store.close()
        store = try await EventStore.open(at: dir.path, configuration: configuration)
        try expectLatest(store)
        try await StreamMetadataTests.wrapJournal(store)
        try await store.close()
        store = try await EventStore.open(at: dir.path, configuration: configuration)
        try expectLatest(store)
        try await store.close()

        // After a crash, a snapshot still in the ring is recovered with it.
        store = try await EventStore.open(at: dir.path, configuration: configuration)
        try await store.saveSnapshot(of: "account", version: 7, data: [1, 2, 3])
        await store.abandonForTesting()
        store = try await EventStore.open(at: dir.path, configuration: configuration)
        #expect(try store.loadSnapshot(of: "account").map(\.version) == 7, "the last saved wins, whatever its version")
        try await store.close()
    }

    @Test func snapshotsOfMissingVersionsDeletedStreamsAndOversizeStatesAreRefused() async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        #expect(await ringstoreError { try await store.saveSnapshot(of: "none", version: 0, data: []) }?.code == .streamNotFound)
        try await store.append(to: "s", events: [event("0"), event("1")])
        let ahead = await ringstoreError { try await store.saveSnapshot(of: "s", version: 2, data: []) }
        #expect(ahead?.code == .invalidArgument)
        #expect(ahead?.currentVersion == 1)
        let large = await ringstoreError { try await store.saveSnapshot(of: "s", version: 1, data: [UInt8](repeating: 0, count: store.configuration.maxEventSize)) }
        #expect(large?.code == .eventTooLarge)
        #expect(await ringstoreError { try await store.saveSnapshot(of: "$s", version: 1, data: []) }?.code == .invalidStreamName)

        // A soft delete hides the snapshot of the deleted events; a new one shows again.
        try await store.saveSnapshot(of: "s", version: 1, data: [7])
        try await store.deleteStream("s")
        #expect(try store.loadSnapshot(of: "s") == nil)
        try await store.append(to: "s", events: [event("2")])
        try await store.saveSnapshot(of: "s", version: 2, data: [8])
        #expect(try store.loadSnapshot(of: "s")?.data == [8])

        try await store.tombstoneStream("s")
        #expect(await ringstoreError { _ = try store.loadSnapshot(of: "s") }?.code == .streamDeleted)
        #expect(await ringstoreError { try await store.saveSnapshot(of: "s", version: 2, data: []) }?.code == .streamDeleted)
        try await store.close()
    }
}
