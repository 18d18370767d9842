import Testing
@testable import Ringstore

/// The journal's answers to the store and the splitter (``Journal`` queries),
/// at the edges: a stream not indexed, acknowledged and not, and what a
/// checkpoint takes out of the ring.
@Suite struct JournalQueryTests {
    @Test func answersFollowAppendsAndCheckpoints() async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        store.splitter.pause()
        let journal = store.journal
        #expect(journal.tail(of: "a", visibleBelow: .max) == .notIndexed)
        #expect(journal.indexedName(equivalentTo: "a") == nil)
        #expect(journal.lastEventPosition(below: .max) == nil)

        let first = try await store.append(to: "a", events: [event("1"), event("2")])
        let second = try await store.append(to: "ba", events: [event("m")])
        let visible = journal.writer.acknowledged
        #expect(visible > second.lastPosition)
        #expect(journal.tail(of: "a", visibleBelow: visible) == .last(version: 1, positionInRing: first.lastPosition))
        // Below the second record only the first is acknowledged; below the first, none.
        #expect(journal.tail(of: "a", visibleBelow: first.lastPosition) == .last(version: 0, positionInRing: first.firstPosition))
        #expect(journal.tail(of: "a", visibleBelow: first.firstPosition) == .empty)
        #expect(journal.indexedStreams(withEventsBelow: visible).sorted() == ["a", "ba"])
        #expect(journal.indexedStreams(withEventsBelow: first.firstPosition).isEmpty)
        #expect(journal.indexedStreams(withPrefix: "b") == ["ba"])
        #expect(journal.indexedName(equivalentTo: "a") == "a")
        #expect(journal.sharedNames(of: ["a", "b"]) == ["a", nil])
        #expect(journal.holdsWholeStream("a"))
        #expect(journal.positions(of: "a", in: first.firstPosition..<first.lastPosition) == [first.firstPosition])
        #expect(journal.lastEventPosition(below: visible) == second.lastPosition)
        let forwards = journal.eventPositions(from: 0, below: visible, limit: 2, backwards: false)
        #expect(forwards.positions == [first.firstPosition, first.lastPosition])
        let backwards = journal.eventPositions(from: .max, below: visible, limit: 2, backwards: true)
        #expect(backwards.positions == [second.lastPosition, first.lastPosition])
        #expect(forwards.start == journal.checkpoint)
        let counts = journal.indexCounts
        #expect(counts.streams == 2 && counts.events == 3)

        // A checkpoint past every record: the versions stay, the ring entries go.
        store.splitter.resume()
        try await store.flush()
        await store.splitter.checkpointForTesting()
        #expect(journal.checkpoint >= visible)
        #expect(journal.tail(of: "a", visibleBelow: visible) == .last(version: 1, positionInRing: nil))
        #expect(!journal.holdsWholeStream("a"))
        #expect(journal.lastEventPosition(below: visible) == nil)
        #expect(journal.indexCounts.events == 0)
        try await store.close()
    }
}
