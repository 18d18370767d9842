import Foundation
import Testing
@testable import Ringstore

/// `$all` read in batches through an ``AllReadWindow``: blocks kept across
/// batches, blocks read ahead from the segments, blocks that do not fit the
/// budget, and events in stream files, split segments and the ring at once.
/// Every read is checked against the events as they were appended.
@Suite struct AllReadWindowTests {
    static let streams = ["a", "b", "c", "d", "e"]

    /// One event as appended: what `$all` must show of it.
    struct Shown: Equatable, CustomStringConvertible {
        var stream: String
        var version: UInt64
        var position: UInt64
        var id: UUID
        var text: String

        init(_ event: RecordedEvent) {
            self.init(stream: event.stream, version: event.version, position: event.position, id: event.id,
                      text: String(decoding: event.data, as: UTF8.self))
        }

        init(stream: String, version: UInt64, position: UInt64, id: UUID, text: String) {
            (self.stream, self.version, self.position, self.id, self.text) = (stream, version, position, id, text)
        }

        var description: String { "\(stream)@\(version)" }
    }

    /// A store whose events lie everywhere at once: stream "a" partly in its
    /// own file (moved) and partly in the segments, the others in the
    /// segments (one entry of several events per stream and checkpoint, so
    /// each block's events are spread over the global order), and the last
    /// rounds only in the ring (the splitter paused). Returns the open store
    /// and every event as appended, in position order.
    static func scatteredStore(_ dir: TemporaryDirectory) async throws -> (EventStore, [Shown]) {
        let store = try await EventStore.open(at: dir.path, configuration: .filePerStream())
        var round = 0
        var appended: [Shown] = []
        func rounds(_ count: Int) async throws {
            for _ in 0..<count {
                for stream in streams {
                    let data = event("\(stream)\(round)")
                    let result = try await store.append(to: stream, events: [data])
                    appended.append(Shown(stream: stream, version: result.firstVersion, position: result.firstPosition,
                                          id: data.id, text: "{\"v\":\"\(stream)\(round)\"}"))
                }
                round += 1
            }
        }
        // Each group of rounds is appended with the splitter paused, so that one
        // checkpoint splits all of it: one segment entry per stream and group.
        func group(_ count: Int) async throws {
            store.splitter.pause()
            try await rounds(count)
            store.splitter.resume()
            await store.splitter.checkpointForTesting()
        }
        for _ in 0..<3 { try await group(4) }
        // Moved into its file: the first three checkpoints' entries of "a".
        let number = try #require(store.catalog.number(of: "a"))
        #expect(try store.split.move(stream: "a", number: number) == .file)
        #expect(try store.split.fileNextVersion(of: "a") == 12)
        try await group(4)
        store.splitter.pause()
        try await rounds(3)
        #expect(store.stats().eventsInJournal >= 15, "the last rounds are still only in the ring")
        return (store, appended.sorted { $0.position < $1.position })
    }

    /// Reads all of `$all` page by page through one window, `limit` events a page.
    static func pages(_ store: EventStore, window: AllReadWindow, limit: Int, direction: ReadDirection = .forwards,
                      from cursor: EventSequence.Cursor = .start) throws -> [Shown] {
        var cursor: EventSequence.Cursor? = cursor
        var events: [Shown] = []
        while let current = cursor {
            let page = try store.readAllVisiblePage(cursor: current, direction: direction, limit: limit, window: window)
            events += page.events.map(Shown.init)
            cursor = page.next
        }
        return events
    }

    @Test(arguments: [1, 3, 4, 7, 512])
    func pagesOfAnySizeShowEveryEventOnceInOrder(limit: Int) async throws {
        let dir = TemporaryDirectory()
        let (store, expected) = try await Self.scatteredStore(dir)
        #expect(expected.count == 5 * 19)
        let window = AllReadWindow(budget: store.allReadBudget)
        #expect(try Self.pages(store, window: window, limit: limit) == expected)
        // Every block kept was handed out whole, or dropped once the read reached the ring.
        #expect(window.counters.blocks == 0 && window.counters.bytes == 0)
        let backwards = try Self.pages(store, window: AllReadWindow(budget: store.allReadBudget), limit: limit,
                                       direction: .backwards, from: .end)
        #expect(backwards == expected.reversed())
        #expect(store.allReadBudget.inUse == 0)
        store.splitter.resume()
        try await store.close()
    }

    /// A block whose events span several pages is read once and kept between
    /// them: after the first page of four, blocks are kept, and they serve the
    /// next pages.
    @Test func aBlockSpanningPagesIsKeptBetweenThem() async throws {
        let dir = TemporaryDirectory()
        let (store, expected) = try await Self.scatteredStore(dir)
        let window = AllReadWindow(budget: store.allReadBudget)
        let first = try store.readAllVisiblePage(cursor: .start, direction: .forwards, limit: 4, window: window)
        #expect(first.events.map(Shown.init) == Array(expected.prefix(4)))
        let kept = window.counters
        #expect(kept.blocks >= 4, "each of the four events' blocks holds more events, so it is kept")
        #expect(store.allReadBudget.inUse == kept.bytes)
        let second = try store.readAllVisiblePage(cursor: try #require(first.next), direction: .forwards, limit: 4, window: window)
        #expect(second.events.map(Shown.init) == Array(expected[4..<8]))
        store.splitter.resume()
        try await store.close()
    }

    /// With no room at all, every block is read for each batch that needs it
    /// and serves all of that batch's events it holds; the result is the same.
    @Test(arguments: [2, 5, 512])
    func withoutRoomEveryBatchReadsItsBlocksAndTheResultIsTheSame(limit: Int) async throws {
        let dir = TemporaryDirectory()
        let (store, expected) = try await Self.scatteredStore(dir)
        let window = AllReadWindow(budget: DecodedBlockBudget(limit: 0))
        #expect(try Self.pages(store, window: window, limit: limit) == expected)
        #expect(window.counters.blocks == 0)
        let backwards = AllReadWindow(budget: DecodedBlockBudget(limit: 0))
        #expect(try Self.pages(store, window: backwards, limit: limit, direction: .backwards, from: .end) == expected.reversed())
        store.splitter.resume()
        try await store.close()
    }

    /// A block too large for the budget but read from again soon keeps a
    /// part, the versions nearest the reader (before, it was read again for
    /// every batch); any budget, both ways, reads the same.
    @Test func aBlockTooLargeForTheBudgetKeepsItsNearPart() async throws {
        let dir = TemporaryDirectory()
        let (store, expected) = try await Self.scatteredStore(dir)
        // The first event is "a" 0, from its file's block of versions 0-11, kept whole when there is room.
        #expect(expected.first?.stream == "a" && expected.first?.version == 0)
        let roomy = AllReadWindow(budget: DecodedBlockBudget(limit: 1 << 20))
        _ = try store.readAllVisiblePage(cursor: .start, direction: .forwards, limit: 1, window: roomy)
        let whole = roomy.counters
        #expect(whole.blocks == 1)
        // One byte short of it: the nearer part of the block's remaining versions is kept.
        let budget = DecodedBlockBudget(limit: whole.bytes - 1)
        let tight = AllReadWindow(budget: budget)
        let first = try store.readAllVisiblePage(cursor: .start, direction: .forwards, limit: 1, window: tight)
        #expect(first.events.map(Shown.init) == [expected[0]])
        #expect(tight.counters.blocks == 1 && tight.counters.bytes < whole.bytes, "a part of the block is kept")
        #expect(budget.inUse == tight.counters.bytes)
        for limit in [1, 3, 512] {
            #expect(try Self.pages(store, window: AllReadWindow(budget: budget), limit: limit) == expected, "pages of \(limit)")
            #expect(try Self.pages(store, window: AllReadWindow(budget: budget), limit: limit, direction: .backwards, from: .end)
                    == expected.reversed(), "pages of \(limit), backwards")
        }
        #expect(budget.inUse == tight.counters.bytes, "every other window gave its blocks back")
        store.splitter.resume()
        try await store.close()
    }

    /// The horizon starts at half the budget, shrinks by a quarter after a
    /// batch with a part that did not fit (never below 64 KiB), grows by an
    /// eighth after one that left a quarter of the budget free (never past
    /// the budget), and otherwise stays.
    @Test func theHorizonFollowsWhatTheBudgetHolds() {
        var horizon = AllReadWindow.Horizon(limit: 8 << 20)
        #expect(horizon.bytes == 4 << 20)
        horizon.adjust(short: true, inUse: 0)
        #expect(horizon.bytes == 3 << 20)
        horizon.adjust(short: false, inUse: 7 << 20)
        #expect(horizon.bytes == 3 << 20, "less than a quarter free: stays")
        horizon.adjust(short: false, inUse: 6 << 20)
        #expect(horizon.bytes == (3 << 20) + (3 << 20) / 8)
        for _ in 0..<40 { horizon.adjust(short: false, inUse: 0) }
        #expect(horizon.bytes == 8 << 20)
        for _ in 0..<100 { horizon.adjust(short: true, inUse: 8 << 20) }
        #expect(horizon.bytes == UInt64(AllReadWindow.Horizon.shortest))
        #expect(AllReadWindow.Horizon(limit: 0).bytes == UInt64(AllReadWindow.Horizon.shortest))
    }

    /// How much of a block to decode: forwards, from the events before the
    /// entry in the block (their spacing in the journal) or, for the block's
    /// first event, from the spacing seen in earlier blocks; with neither, all
    /// of it. Backwards, the block up to the entry.
    @Test func theDecodedPartFollowsTheStreamsSpacing() {
        // 100 events of 250 raw bytes, whose first lies at journal position 1,000.
        let header = StreamBlock.Header(compressed: true, firstVersion: 0, firstPosition: 1_000, count: 100, rawLength: 25_000,
                                        storedLength: 10_000, payloadCRC: 0)
        func bytes(version: UInt64, position: UInt64, backwards: Bool = false, spacing: Double? = nil) -> Int {
            let entry = GlobalIndex.Entry(position: position, version: version, stream: 7)
            return AllReadWindow.extent(for: entry, backwards: backwards, horizon: 40_000, spacing: spacing).rawBytes(header)
        }
        // Event 10 at 11,000: one event every 1,000 bytes, so about 50 within the horizon (with a quarter more).
        #expect(bytes(version: 10, position: 11_000) == 25_000 * 62 / 100 + 256)
        #expect(bytes(version: 0, position: 1_000) == .max, "the first event, nothing to reckon from")
        #expect(bytes(version: 0, position: 1_000, spacing: 1_000) == 25_000 * 52 / 100 + 256)
        #expect(bytes(version: 0, position: 1_000, spacing: 100) == .max, "more than the block: all of it")
        #expect(bytes(version: 9, position: 10_000, backwards: true, spacing: 1_000) == 25_000 * 125 / 1_000 + 256)
    }

    /// `readAll(from:)` at a position in the middle of a block, forwards and
    /// backwards, and `maxCount` ending in the middle of one.
    @Test func readsStartingAndEndingInsideABlock() async throws {
        let dir = TemporaryDirectory()
        let (store, expected) = try await Self.scatteredStore(dir)
        // The second event of "b"'s first block (versions 0-3 were one checkpoint's entry).
        let middle = try #require(expected.firstIndex { $0.stream == "b" && $0.version == 1 })
        let from = expected[middle].position
        #expect(try await store.readAll(from: .position(from)).collect().map(Shown.init) == Array(expected[middle...]))
        #expect(try await store.readAll(from: .position(from), direction: .backwards).collect().map(Shown.init)
                == Array(expected[...middle].reversed()))
        #expect(try await store.readAll(from: .position(from), maxCount: 6).collect().map(Shown.init)
                == Array(expected[middle..<(middle + 6)]))
        // A position between two events starts at the next one.
        #expect(try await store.readAll(from: .position(from + 1), maxCount: 3).collect().map(Shown.init)
                == Array(expected[(middle + 1)..<(middle + 4)]))
        // The whole of it through the public API (pages of 512), both ways.
        #expect(try await store.readAll().collect().map(Shown.init) == expected)
        #expect(try await store.readAll(from: .end, direction: .backwards).collect().map(Shown.init) == expected.reversed())
        store.splitter.resume()
        try await store.close()
    }

    /// Filters, metadata and deletes apply to what the window reads exactly
    /// as before: a subscription with a prefix filter, a truncated stream and
    /// a tombstoned one.
    @Test func filtersMetadataAndDeletesApplyToBatchedReads() async throws {
        let dir = TemporaryDirectory()
        let (store, appended) = try await Self.scatteredStore(dir)
        store.splitter.resume()
        try await store.setStreamMetadata(StreamMetadata(truncateBefore: 6), for: "b")
        try await store.tombstoneStream("c")
        let all = appended.filter { $0.stream != "c" && ($0.stream != "b" || $0.version >= 6) }
        #expect(all.filter { $0.stream == "b" }.map(\.version) == Array(6..<19))
        #expect(try await store.readAll().collect().map(Shown.init) == all)
        var delivered: [Shown] = []
        let wanted = all.filter { $0.stream.hasPrefix("d") || $0.stream.hasPrefix("b") }
        for try await event in try store.subscribeToAll(filter: .streamPrefix("d", "b")) {
            delivered.append(Shown(event))
            if delivered.count == wanted.count { break }
        }
        #expect(delivered == wanted)
        try await store.close()
    }

    /// Reading ahead in a segment keeps the entries of streams the read has
    /// not reached yet, and a reopened store (no chain listings, nothing
    /// cached) reads the same.
    @Test func readingAheadInASegmentKeepsLaterEntriesAndReadsTheSame() async throws {
        let dir = TemporaryDirectory()
        let expected: [Shown]
        do {
            let (store, appended) = try await Self.scatteredStore(dir)
            store.splitter.resume()
            // Reads of the streams have the splitter write their unsplit events ahead,
            // as entries of their own in the segment.
            for stream in Self.streams { _ = try await store.read(stream: stream).collect() }
            expected = appended
            try await store.close()
        }
        let store = try await EventStore.open(at: dir.path, configuration: .filePerStream())
        let window = AllReadWindow(budget: store.allReadBudget)
        let first = try store.readAllVisiblePage(cursor: .start, direction: .forwards, limit: 2, window: window)
        #expect(first.events.map(Shown.init) == Array(expected.prefix(2)))
        // "a" came from its file, "b" from a segment: the entries of the other
        // streams written after it came with it.
        #expect(window.counters.blocks >= 4)
        var rest: [RecordedEvent] = []
        var cursor = first.next
        while let current = cursor {
            let page = try store.readAllVisiblePage(cursor: current, direction: .forwards, limit: 1, window: window)
            rest += page.events
            cursor = page.next
        }
        #expect(rest.map(Shown.init) == Array(expected.dropFirst(2)))
        #expect(window.counters.blocks == 0)
        // Whole events (type, metadata, timestamps, content type) as reads of the streams give them.
        var byStream: [RecordedEvent] = []
        for stream in Self.streams { byStream += try await store.read(stream: stream).collect() }
        byStream.sort { $0.position < $1.position }
        #expect(first.events + rest == byStream)
        try await store.close()
    }

    /// Events of several types interleaved within blocks (a type string made
    /// once is reused while the bytes repeat) and stream numbers far apart (the
    /// window keeps blocks by number in a dense array): `$all` through a window,
    /// and each stream's reads, give every event its own type, in order.
    @Test func interleavedTypesAndManyStreamsReadBackExactly() async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .filePerStream())
        let types = ["Created", "Updated", "Updated", "Deleted-with-a-longer-type-name", "", "Created"]
        var appended: [(stream: String, type: String, position: UInt64)] = []
        store.splitter.pause()
        for round in 0..<3 {
            for stream in (0..<300).map({ "s\($0)" }) {
                let type = types[(round + stream.count) % types.count].isEmpty ? "T" : types[(round + stream.count) % types.count]
                let result = try await store.append(to: stream, events: [EventData(type: type, json: "{}")])
                appended.append((stream, type, result.firstPosition))
            }
            for (i, type) in types.enumerated() where !type.isEmpty {
                let result = try await store.append(to: "mixed", events: [EventData(type: type, json: "{\"i\":\(i)}")])
                appended.append(("mixed", type, result.firstPosition))
            }
        }
        store.splitter.resume()
        await store.splitter.checkpointForTesting()
        #expect(store.stats().eventsInJournal == 0)
        let window = AllReadWindow(budget: store.allReadBudget)
        let all = try Self.pages(store, window: window, limit: 7)
        #expect(all.count == appended.count)
        var cursor: EventSequence.Cursor? = .start
        var read: [RecordedEvent] = []
        let second = AllReadWindow(budget: store.allReadBudget)
        while let current = cursor {
            let page = try store.readAllVisiblePage(cursor: current, direction: .forwards, limit: 64, window: second)
            read += page.events
            cursor = page.next
        }
        #expect(read.map { "\($0.stream) \($0.type) \($0.position)" } == appended.map { "\($0.stream) \($0.type) \($0.position)" })
        let mixed = try await store.read(stream: "mixed").collect()
        #expect(mixed.map(\.type) == appended.filter { $0.stream == "mixed" }.map(\.type))
        #expect(window.counters.blocks == 0 && second.counters.blocks == 0 && store.allReadBudget.inUse == 0)
        try await store.close()
    }
}
