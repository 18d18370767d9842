import Foundation
import Synchronization
import Testing
@testable import Ringstore

/// Holds the first thread that reaches a ``TestHook`` until the test lets it go,
/// so that the test can make something happen at exactly that point.
final class PausePoint: Sendable {
    private let signal = AsyncStream<Void>.makeStream()
    private let go = DispatchSemaphore(value: 0)
    private let first = Atomic<Bool>(true)

    /// The hook's action: the first caller announces itself and waits; later ones pass.
    func action() {
        guard first.exchange(false, ordering: .acquiringAndReleasing) else { return }
        signal.continuation.yield()
        go.wait()
    }

    /// Returns once a thread is held at the hook.
    func reached() async {
        var iterator = signal.stream.makeAsyncIterator()
        _ = await iterator.next()
    }

    /// Lets the held thread go on.
    func release() { go.signal() }
}

/// Runs `body` on a thread of its own (it may block at a ``PausePoint`` without
/// taking a thread from the concurrency pool) and returns its result.
func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

/// `$all` reads racing checkpoints and the splitter: what they return must not
/// depend on when a checkpoint lands between their steps.
@Suite struct ReadAllRaceTests {
    /// A forward `$all` page (what `readAll` and `subscribeToAll` read) loads
    /// the split cursor, then looks the ring up. A checkpoint finishing in
    /// between drops the ring's entries below its new cursor; the page used to
    /// read the ring from the old split cursor and return nothing, so the
    /// events in between were skipped for good. Both ways a page reaches the
    /// ring are covered: from a cursor at the split position, and from a cursor
    /// before it with no index entries left before it.
    @Test(arguments: [true, false])
    func forwardPageRacingACheckpointSkipsNothing(cursorAtSplit: Bool) async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        let first = try await store.append(to: "a", events: (0..<5).map { event("a\($0)") })
        await store.splitter.checkpointForTesting()
        // The next events stay in the ring, unsplit, until the test says.
        store.splitter.pause()
        let second = try await store.append(to: "b", events: (0..<5).map { event("b\($0)") })
        let split = store.splitter.readers.splitPosition.load(ordering: .acquiring)
        try #require(split > first.lastPosition && split <= second.firstPosition)

        let pause = PausePoint()
        store.allPageCursorsLoaded.install { pause.action() }
        defer { store.allPageCursorsLoaded.remove() }
        let cursor = cursorAtSplit ? second.firstPosition : first.lastPosition + 1
        let reader = Task {
            try await onOwnThread { try store.readAllVisiblePage(cursor: .at(cursor), direction: .forwards, limit: 100).events }
        }
        await pause.reached()
        // The reader has its cursors; now a checkpoint takes the second append out of the ring.
        store.splitter.resume()
        await store.splitter.checkpointForTesting()
        #expect(store.stats().checkpointPosition > second.lastPosition)
        #expect(store.stats().eventsInJournal == 0)
        pause.release()
        let page = try await reader.value
        #expect(page.map(text) == (0..<5).map { "{\"v\":\"b\($0)\"}" })

        // The whole of `$all`, and a subscription from the same cursor, agree.
        #expect(try await store.readAll().collect().count == 10)
        var delivered: [RecordedEvent] = []
        for try await event in try store.subscribeToAll(from: .position(cursor)) {
            delivered.append(event)
            if delivered.count == 5 { break }
        }
        #expect(delivered.map(\.stream) == Array(repeating: "b", count: 5))
        try await store.close()
    }

    /// Backward `$all` from a position at or after the split cursor with no
    /// event of the ring at or before it took every global-index entry, up to
    /// the index's end: entries the splitter had scanned but not yet written to
    /// stream files (so the read failed with `.corruptData`), and events after
    /// the position it was asked to read back from. Set up without any race: a
    /// padding record at the split cursor (the ring wraps there), so the first
    /// event after it lies beyond it, scanned into the index and not yet split.
    @Test func backwardPageFromTheSplitCursorReadsOnlyWhatIsBeforeIt() async throws {
        let dir = TemporaryDirectory()
        let capacity: UInt64 = 1 << 20
        let store = try await EventStore.open(at: dir.path, configuration: .testing(capacity: capacity))
        // Fill the ring up to 104 bytes before its end with 1 KiB records (and one shorter).
        let target = Int(capacity) - 104
        var lengths = Array(repeating: 1024, count: target / 1024)
        if target % 1024 > 0 { lengths.append(target % 1024) }
        let overhead = JournalRecord.eventLength(streamCount: 1, typeCount: 1, metadataCount: 0, dataCount: 0)
        var appended: [AppendResult] = []
        for chunk in stride(from: 0, to: lengths.count, by: 100) {
            let events = lengths[chunk..<min(lengths.count, chunk + 100)].map {
                EventData(type: "T", data: [UInt8](repeating: 7, count: $0 - overhead), contentType: .binary)
            }
            appended.append(try await store.append(to: "a", events: events))
        }
        try #require(appended[0].firstPosition == 0)
        await store.splitter.checkpointForTesting()
        let split = store.splitter.readers.splitPosition.load(ordering: .acquiring)
        try #require(split == UInt64(target))
        let firstCount = lengths.count

        // Too long for the ring's tail: a padding record at `split`, the events from the next lap on.
        let later = try await store.append(to: "b", events: (0..<3).map { _ in
            EventData(type: "T", data: [UInt8](repeating: 9, count: 1024 - overhead), contentType: .binary)
        })
        try #require(later.firstPosition == capacity)
        // Wait until the splitter has scanned them into the global index; then hold it
        // there, so they are not written to a stream file before the read.
        let deadline = ContinuousClock.now + .seconds(30)
        while store.globalIndex.entryCount < firstCount + 3 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(1))
        }
        store.splitter.pause()
        try #require(store.globalIndex.entryCount == firstCount + 3)

        let back = try await store.readAll(from: .position(split), direction: .backwards, maxCount: 5).collect()
        #expect(back.map(\.stream) == Array(repeating: "a", count: 5))
        #expect(back.first?.position == appended.last!.lastPosition)
        #expect(back.map(\.version) == (0..<5).map { UInt64(firstCount - 1 - $0) })
        // From the end: the new events (from the ring), then the old ones, nothing twice.
        let all = try await store.readAll(from: .end, direction: .backwards).collect()
        #expect(all.count == firstCount + 3)
        #expect(all.prefix(3).map(\.stream) == ["b", "b", "b"])
        #expect(Set(all.map(\.position)).count == all.count)
        store.splitter.resume()
        try await store.close()
    }
}
