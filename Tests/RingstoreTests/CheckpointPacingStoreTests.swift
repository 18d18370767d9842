import Foundation
import Testing
@testable import Ringstore

/// A store with checkpoint pacing turned on: the splitter pauses while it
/// writes a checkpoint of many small streams, and every event is still stored
/// once, readable at once and after reopening.
@Suite struct CheckpointPacingStoreTests {
    @Test func aPacedCheckpointPausesAndKeepsEveryEvent() async throws {
        let dir = TemporaryDirectory(inMemory: true)
        var configuration = Configuration.testing(capacity: 8 << 20)
        configuration.checkpointPacing = true
        let streams = 3_000
        let store = try await EventStore.open(at: dir.path, configuration: configuration)
        for s in 0..<streams {
            try await store.append(to: "paced-\(s)", events: (0..<4).map { event("e\(s)-\($0)") })
        }
        // Thousands of small streams pending: building their blocks takes the
        // splitter more than a slice, and the quiet journal leaves the ring room.
        await store.splitter.checkpointForTesting()
        #expect(store.splitter.pacedPauses.load(ordering: .relaxed) > 0, "the checkpoint's writing never paused")
        for s in stride(from: 0, to: streams, by: 7) {
            #expect(try await store.read(stream: "paced-\(s)").collect().map(\.version) == [0, 1, 2, 3])
        }
        try await store.close()
        let reopened = try await EventStore.open(at: dir.path, configuration: .testing(capacity: 8 << 20))
        for s in 0..<streams {
            let events = try await reopened.read(stream: "paced-\(s)").collect()
            #expect(events.map(\.version) == [0, 1, 2, 3], "paced-\(s)")
        }
        try await reopened.close()
    }

    @Test func theStoreDoesNotPaceByDefault() async throws {
        #expect(Configuration().checkpointPacing == false)
        let dir = TemporaryDirectory(inMemory: true)
        let store = try await EventStore.open(at: dir.path, configuration: .testing(capacity: 8 << 20))
        for s in 0..<500 { try await store.append(to: "plain-\(s)", events: [event("e\(s)")]) }
        await store.splitter.checkpointForTesting()
        #expect(store.splitter.pacedPauses.load(ordering: .relaxed) == 0)
        try await store.close()
    }
}
