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

/// A store whose journal sync stalled: its next checkpoint's segment writes
/// are spread over time (`SplitWritePace`), and every event is still stored
/// once, readable at once and after reopening.
@Suite struct SegmentWritePacingStoreTests {
    @Test func aCheckpointAfterAJournalStallSpreadsItsSegmentWrites() async throws {
        let dir = TemporaryDirectory()
        let configuration = Configuration.testing(capacity: 8 << 20)
        let streams = 2_000
        // About 370 bytes that compress little: several segment writes a checkpoint.
        let payload = (0..<10).map { _ in UUID().uuidString }.joined()
        let store = try await EventStore.open(at: dir.path, configuration: configuration)
        // A first checkpoint (the journal falls quiet): the splitter's output is
        // measured from one checkpoint's start to a later one's.
        try await appendToEach(streams, of: store, payload: payload, suffix: "-0")
        try await waitUntil("a first checkpoint") { store.splitter.checkpoints >= 1 }
        // (On a loaded machine a sync may already have stalled on its own, and a
        // checkpoint been paced: counted from here.)
        let pacedBefore = store.splitter.segmentPacedCheckpoints.load(ordering: .relaxed)

        // One journal sync stalls (a slow card): the next checkpoint is paced.
        // (Whether it pauses depends on how fast this machine builds the
        // blocks, which a loaded machine may do slower than the pace; the
        // pauses themselves are tested in `SplitWritePacerTests`.)
        let stall = FaultInjection.install(.init(operation: .flush, pathContains: dir.child(Journal.fileName),
                                                 effect: .delay(.milliseconds(250)), count: 1))
        defer { FaultInjection.remove(stall) }
        try await appendToEach(streams, of: store, payload: payload, suffix: "-1")
        #expect(store.journal.writer.syncStalls.load(ordering: .relaxed) > 0, "the delayed sync counts as a stall")
        try await waitUntil("a checkpoint paced for the device") {
            store.splitter.segmentPacedCheckpoints.load(ordering: .relaxed) > pacedBefore
        }
        #expect(!store.splitter.mover.segmentsOverBudget)
        for s in stride(from: 0, to: streams, by: 7) {
            #expect(try await store.read(stream: "spread-\(s)").collect().map(\.version) == [0, 1], "spread-\(s)")
        }
        try await store.close()

        let reopened = try await EventStore.open(at: dir.path, configuration: configuration)
        for s in 0..<streams {
            let events = try await reopened.read(stream: "spread-\(s)").collect()
            #expect(events.map(\.version) == [0, 1], "spread-\(s)")
            #expect(events.map(text(of:)) == ["{\"v\":\"\(payload)\(s)-0\"}", "{\"v\":\"\(payload)\(s)-1\"}"], "spread-\(s)")
        }
        try await reopened.close()
    }

    /// One event to each of `streams` streams, 32 appends at a time (so that
    /// syncs are shared, as they are on a busy store).
    private func appendToEach(_ streams: Int, of store: EventStore, payload: String, suffix: String) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for lane in 0..<32 {
                group.addTask {
                    for s in stride(from: lane, to: streams, by: 32) {
                        try await store.append(to: "spread-\(s)", events: [event("\(payload)\(s)\(suffix)")])
                    }
                }
            }
            try await group.waitForAll()
        }
    }
}
