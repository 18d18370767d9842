import Testing
@testable import Ringstore

/// Appends slowed while the split segments are past their budget on a device
/// short of writes: the tick as a function of the segments' bytes, and the
/// writer admitting appends on it.
@Suite struct WriteSlowdownTests {
    @Test func theTickGrowsFromNothingAtTheBudgetToTheLongestAtTwiceIt() {
        let slowdown = WriteSlowdown(budgetBytes: 1_000)
        let longest = WriteSlowdown.longestIntervalNanoseconds
        #expect(slowdown.interval(segmentBytes: 0, deviceShortOfWrites: true) == 0)
        #expect(slowdown.interval(segmentBytes: 1_000, deviceShortOfWrites: true) == 0, "within the budget")
        #expect(slowdown.interval(segmentBytes: 1_250, deviceShortOfWrites: true) == longest / 4)
        #expect(slowdown.interval(segmentBytes: 1_500, deviceShortOfWrites: true) == longest / 2)
        #expect(slowdown.interval(segmentBytes: 2_000, deviceShortOfWrites: true) == longest)
        #expect(slowdown.interval(segmentBytes: 9_000, deviceShortOfWrites: true) == longest, "never longer")
        #expect(slowdown.interval(segmentBytes: 1_001, deviceShortOfWrites: true) > 0, "just past the budget: slowed a little")
    }

    @Test func aDeviceThatKeepsUpIsNeverSlowed() {
        let slowdown = WriteSlowdown(budgetBytes: 1_000)
        #expect(slowdown.interval(segmentBytes: 5_000, deviceShortOfWrites: false) == 0)
        #expect(WriteSlowdown(budgetBytes: 0).interval(segmentBytes: 5_000, deviceShortOfWrites: true) == 0, "no budget: nothing to measure against")
    }

    /// Appends made while the writer admits them on a tick each wait for it,
    /// are counted, and complete; with the tick lifted they go at once.
    @Test func appendsWaitForTheTickAndAllComplete() async throws {
        let dir = TemporaryDirectory(inMemory: true)
        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        // The mover sets the tick only when its own value changes, so it leaves this one alone.
        store.journal.writer.admissionIntervalNanoseconds.store(2_000_000, ordering: .relaxed)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<8 { group.addTask { try await store.append(to: "slowed-\(i % 2)", events: [event("e\(i)")]) } }
            try await group.waitForAll()
        }
        #expect(store.stats().appendsSlowed == 8)
        store.journal.writer.admissionIntervalNanoseconds.store(0, ordering: .relaxed)
        try await store.append(to: "slowed-0", events: [event("after")])
        #expect(store.stats().appendsSlowed == 8)
        #expect(try await store.read(stream: "slowed-0").collect().count == 5)
        #expect(try await store.read(stream: "slowed-1").collect().count == 4)
        try await store.close()
    }
}
