import Foundation
import Testing
@testable import Ringstore

@Suite struct StreamMetadataTests {
    private func versions(_ store: EventStore, _ stream: String, direction: ReadDirection = .forwards,
                          from: StreamRevision = .start) async throws -> [UInt64] {
        try await store.read(stream: stream, from: from, direction: direction).collect().map(\.version)
    }

    /// Fills the ring several times over with events of other streams, so that
    /// everything written before has left it.
    static func wrapJournal(_ store: EventStore, laps: UInt64 = 3) async throws {
        let target = store.stats().reservedPosition + laps * store.stats().journalCapacity
        var i = 0
        while store.stats().checkpointPosition < target {
            try await store.append(to: "filler-\(i % 7)", events: [EventData(type: "Fill", data: [UInt8](repeating: UInt8(i % 251), count: 400))])
            i += 1
        }
    }

    @Test func maxCountAndTruncateBeforeHideEventsAtOnce() async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        for i in 0..<10 { try await store.append(to: "s", events: [event("\(i)")]) }
        #expect(try store.streamMetadata(of: "s") == StreamMetadata())

        let first = try await store.setStreamMetadata(StreamMetadata(maxCount: 3), for: "s")
        #expect(first.firstVersion == 0)
        #expect(try await versions(store, "s") == [7, 8, 9])
        #expect(try await versions(store, "s", direction: .backwards, from: .end) == [9, 8, 7])
        #expect(try await versions(store, "s", from: .version(2)) == [7, 8, 9])
        try await store.append(to: "s", events: [event("10")])
        #expect(try await versions(store, "s") == [8, 9, 10])

        try await store.setStreamMetadata(StreamMetadata(truncateBefore: 6), for: "s", expectedMetadataVersion: .exact(0))
        #expect(try await versions(store, "s") == [6, 7, 8, 9, 10])
        #expect(try await versions(store, "s", direction: .backwards, from: .end) == [10, 9, 8, 7, 6])
        #expect(try store.streamMetadata(of: "s") == StreamMetadata(truncateBefore: 6))
        #expect(try store.currentVersion(of: "$$s") == 1)

        // Truncated entirely: the stream exists but shows nothing.
        try await store.setStreamMetadata(StreamMetadata(truncateBefore: 100), for: "s")
        #expect(try await versions(store, "s").isEmpty)

        let conflict = await ringstoreError { try await store.setStreamMetadata(StreamMetadata(), for: "s", expectedMetadataVersion: .exact(0)) }
        #expect(conflict?.code == .wrongExpectedVersion)
        #expect(conflict?.currentVersion == 2)
        try await store.close()
    }

    @Test func maxAgeHidesOldEvents() async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        for i in 0..<600 { try await store.append(to: "aged", events: [event("old \(i)")]) }  // more than a page
        let lastOld = try #require(try store.lastEvent(of: "aged")).timestampNanoseconds
        try await waitUntil("the clock to pass the last old event") { wallClockNanoseconds() > lastOld }
        try await store.append(to: "aged", events: [event("new")])
        let new = try #require(try store.lastEvent(of: "aged")).timestampNanoseconds
        try await store.setStreamMetadata(StreamMetadata(maxAge: .milliseconds(300)), for: "aged")
        // Reads measure maxAge back from exactly 300 ms after "new" was stamped, however
        // long they take: "new" is the oldest event shown, everything before it is hidden.
        store.maxAgeNowForTesting.store(new + 300_000_000, ordering: .relaxed)
        #expect(try await versions(store, "aged") == [600])
        #expect(try await versions(store, "aged", direction: .backwards, from: .end) == [600])
        #expect(try store.streamMetadata(of: "aged").maxAge == .milliseconds(300))
        #expect(try await store.readAll().collect().map(\.version) == [600])
        try await store.close()
    }

    @Test func metadataSurvivesRestartsAndJournalWraps() async throws {
        let dir = TemporaryDirectory()
        var store = try await EventStore.open(at: dir.path, configuration: .testing(capacity: 256 << 10))
        for i in 0..<10 { try await store.append(to: "kept", events: [event("\(i)")]) }
        try await store.setStreamMetadata(StreamMetadata(maxCount: 4, truncateBefore: 2), for: "kept")
        try await store.close()

        store = try await EventStore.open(at: dir.path, configuration: .testing(capacity: 256 << 10))
        #expect(try await versions(store, "kept") == [6, 7, 8, 9])
        try await Self.wrapJournal(store)
        try await store.close()

        store = try await EventStore.open(at: dir.path, configuration: .testing(capacity: 256 << 10))
        #expect(try store.streamMetadata(of: "kept") == StreamMetadata(maxCount: 4, truncateBefore: 2))
        #expect(try await versions(store, "kept") == [6, 7, 8, 9])
        // A change after the restart replaces it, and continues the metadata stream's versions.
        let result = try await store.setStreamMetadata(StreamMetadata(maxCount: 2), for: "kept", expectedMetadataVersion: .exact(0))
        #expect(result.firstVersion == 1)
        #expect(try await versions(store, "kept") == [8, 9])
        try await store.close()
    }

    @Test func metadataWrittenJustBeforeACrashIsHonouredAfterRecovery() async throws {
        let dir = TemporaryDirectory()
        var store = try await EventStore.open(at: dir.path, configuration: .testing())
        for i in 0..<5 { try await store.append(to: "c", events: [event("\(i)")]) }
        try await store.setStreamMetadata(StreamMetadata(truncateBefore: 3), for: "c")
        await store.abandonForTesting()
        store = try await EventStore.open(at: dir.path, configuration: .testing())
        #expect(try await versions(store, "c") == [3, 4])
        try await store.close()
    }

    @Test func allReadsAndSubscriptionsShowWhatStreamReadsShow() async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        for i in 0..<6 {
            try await store.append(to: "a", events: [event("a\(i)")])
            try await store.append(to: "b", events: [event("b\(i)")])
        }
        try await store.setStreamMetadata(StreamMetadata(maxCount: 2), for: "a")
        let all = try await store.readAll().collect()
        #expect(all.map(text) == ["b0", "b1", "b2", "b3", "a4", "b4", "a5", "b5"].map { "{\"v\":\"\($0)\"}" })
        #expect(!all.contains { $0.stream.hasPrefix("$") })
        let backwards = try await store.readAll(from: .end, direction: .backwards).collect()
        #expect(backwards.map(\.position) == all.map(\.position).reversed())

        // A subscription from the start skips the hidden events and the metadata stream, then goes live.
        let subscription = try store.subscribeToAll(filter: .streamPrefix("a"))
        let received = Counter()
        let reader = Task { () -> [UInt64] in
            var seen: [UInt64] = []
            for try await event in subscription {
                seen.append(event.version)
                received.add()
                if seen.count == 3 { break }
            }
            return seen
        }
        // Once caught up (a4, a5), a new event arrives live. (Appended earlier, it
        // would have hidden a4 before the subscriber got to it: maxCount is 2.)
        try await waitUntil("the subscriber to catch up") { received.value >= 2 }
        try await store.append(to: "a", events: [event("a6")])
        #expect(try await reader.value == [4, 5, 6])
        #expect(try store.streamNames() == ["a", "b"])
        try await store.close()
    }

    @Test func theCacheHoldsOnlyStreamsWithMetadata() async throws {
        let dir = TemporaryDirectory()
        var store = try await EventStore.open(at: dir.path, configuration: .testing())
        for stream in ["plain", "ruled"] { try await store.append(to: stream, events: [event("0"), event("1")]) }
        try await store.setStreamMetadata(StreamMetadata(maxCount: 1), for: "ruled")
        try await store.close()
        store = try await EventStore.open(at: dir.path, configuration: .testing())
        #expect(try await store.read(stream: "plain").collect().count == 2)
        #expect(try await store.read(stream: "ruled").collect().map(\.version) == [1])
        #expect(store.metadataCache.lookup("plain") == nil)
        #expect(store.metadataCache.lookup("ruled")?.metadata == StreamMetadata(maxCount: 1))
        // A stream given metadata after the scan is known at once.
        try await store.setStreamMetadata(StreamMetadata(truncateBefore: 1), for: "plain")
        #expect(try await store.read(stream: "plain").collect().map(\.version) == [1])
        try await store.close()
    }

    @Test func badMetadataAndSystemNamesAreRefused() async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        let zero = await ringstoreError { try await store.setStreamMetadata(StreamMetadata(maxCount: 0), for: "s") }
        #expect(zero?.code == .invalidArgument)
        #expect(zero?.message.contains("maxCount") == true)
        let age = await ringstoreError { try await store.setStreamMetadata(StreamMetadata(maxAge: .seconds(-1)), for: "s") }
        #expect(age?.code == .invalidArgument)
        let system = await ringstoreError { try await store.setStreamMetadata(StreamMetadata(maxCount: 1), for: "$$s") }
        #expect(system?.code == .invalidStreamName)
        let append = await ringstoreError { try await store.append(to: "$$s", events: [event("x")]) }
        #expect(append?.code == .invalidStreamName)
        let long = String(repeating: "l", count: 1023)
        try await store.append(to: long, events: [event("x")])
        let tooLong = await ringstoreError { try await store.setStreamMetadata(StreamMetadata(maxCount: 1), for: long) }
        #expect(tooLong?.code == .invalidStreamName)
        #expect(tooLong?.message.contains("1022 bytes") == true)
        #expect(await ringstoreError { try await store.tombstoneStream(long) }?.code == .invalidStreamName)
        #expect(try await store.read(stream: long).collect().count == 1)
        try await store.close()
    }

    @Test func metadataJSONUsesKurrentDBNames() throws {
        var metadata = StreamMetadata(maxCount: 5, maxAge: .seconds(3600), truncateBefore: 7)
        #expect(String(decoding: try metadata.encodedJSON(), as: UTF8.self) == #"{"$maxAge":3600,"$maxCount":5,"$tb":7}"#)
        metadata.isSoftDeleted = true
        #expect(try StreamMetadata.decode(try metadata.encodedJSON(), stream: "s") == metadata)
        #expect(try StreamMetadata.decode(Array(#"{"$maxAge":0.5,"custom":1}"#.utf8), stream: "s").maxAge == .milliseconds(500))
        #expect(throws: RingstoreError.self) { try StreamMetadata.decode(Array("not json".utf8), stream: "s") }
    }
}
