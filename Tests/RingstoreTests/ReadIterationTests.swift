import Foundation
import Testing
@testable import Ringstore

/// The read sequences' per-event path: pages handed out by moving events
/// (``EventPage``) through an iterator inlined into the caller, events made
/// from stored bytes (IDs reinterpreted in place, types reused while their
/// bytes repeat), block headers parsed in place. Every read is checked event
/// by event against what was appended, across page boundaries (512 events),
/// with hidden events, and with events in a stream file, in split segments
/// and in the ring at once.
@Suite struct ReadIterationTests {
    /// One appended event as reads must show it.
    struct Shown: Equatable, CustomStringConvertible {
        var stream: String
        var version: UInt64
        var position: UInt64
        var id: UUID
        var type: String
        var data: [UInt8]
        var metadata: [UInt8]

        init(_ event: RecordedEvent) {
            (stream, version, position, id, type, data, metadata)
                = (event.stream, event.version, event.position, event.id, event.type, event.data, event.metadata)
        }

        init(stream: String, version: UInt64, position: UInt64, event: EventData) {
            (self.stream, self.version, self.position) = (stream, version, position)
            (id, type, data, metadata) = (event.id, event.type, event.data, event.metadata)
        }

        var description: String { "\(stream)@\(version)" }
    }

    static let streams = ["alpha", "a-stream-name-longer-than-fifteen-bytes", "c"]
    /// Types of many lengths (the type cache compares 4-16 bytes as two words),
    /// some equal in length and differing in one byte only.
    static let types = ["", "T", "Abc", "Abcd", "Abce", "Reading", "Readinh", "Placed01", "Placed02", "TypeOfNine",
                        "Shipped-12345", "Shipped-12346", "SixteenBytesLong", "SixteenBytesLonG", "SeventeenBytesLong",
                        "Ünïcödé", "Reading"]

    /// 1,300 events (a few pages), one per append, interleaved over the
    /// streams: the first 900 split and checkpointed (those of the first
    /// stream then moved into its file), the rest left in the ring. Returns
    /// the open store (splitter paused) and the events in position order.
    static func store(_ dir: TemporaryDirectory) async throws -> (EventStore, [Shown]) {
        let store = try await EventStore.open(at: dir.path, configuration: .filePerStream(capacity: 4 << 20))
        var appended: [Shown] = []
        for i in 0..<1300 {
            if i == 900 {
                await store.splitter.checkpointForTesting()
                let number = try #require(store.catalog.number(of: streams[0]))
                _ = try store.split.move(stream: streams[0], number: number)  // unless the mover has by now
                #expect(try store.split.fileNextVersion(of: streams[0]) > 0, "the first stream's split events are in its file")
                store.splitter.pause()
            }
            let stream = streams[i % streams.count]
            let type = types[i % types.count]
            let event = EventData(type: type.isEmpty ? "E" : type, data: Array("{\"i\":\(i)}".utf8),
                                  metadata: i % 5 == 0 ? Array("m\(i)".utf8) : [])
            let result = try await store.append(to: stream, events: [event])
            appended.append(Shown(stream: stream, version: result.firstVersion, position: result.firstPosition, event: event))
        }
        return (store, appended)
    }

    @Test(arguments: [1, 511, 512, 513, 1024, 1025, Int.max])
    func everyReadHandsOutEachEventOnceAcrossPages(maxCount: Int) async throws {
        let dir = TemporaryDirectory(inMemory: true)
        let (store, appended) = try await Self.store(dir)
        #expect(try await store.readAll(maxCount: maxCount).collect().map(Shown.init) == Array(appended.prefix(maxCount)))
        #expect(try await store.readAll(from: .end, direction: .backwards, maxCount: maxCount).collect().map(Shown.init)
                == Array(appended.reversed().prefix(maxCount)))
        store.splitter.resume()
        for stream in Self.streams {
            let events = appended.filter { $0.stream == stream }
            #expect(try await store.read(stream: stream, maxCount: maxCount).collect().map(Shown.init) == Array(events.prefix(maxCount)))
            #expect(try await store.read(stream: stream, from: .end, direction: .backwards, maxCount: maxCount).collect().map(Shown.init)
                    == Array(events.reversed().prefix(maxCount)))
        }
        try await store.close()
    }

    /// An iterator stepped by hand (`next()`), one abandoned mid-page, one
    /// iterated on the main actor, and a subscription across pages.
    @Test func iteratorsByHandOnTheMainActorAndSubscriptions() async throws {
        let dir = TemporaryDirectory(inMemory: true)
        let (store, appended) = try await Self.store(dir)
        var iterator = store.readAll().makeAsyncIterator()
        var byHand: [Shown] = []
        while let event = try await iterator.next() { byHand.append(Shown(event)) }
        #expect(byHand == appended)
        #expect(try await iterator.next() == nil, "an ended iterator stays ended")

        var abandoned = store.readAll().makeAsyncIterator()
        for expected in appended.prefix(700) { #expect(try await abandoned.next().map(Shown.init) == expected) }

        @MainActor func onMainActor() async throws -> [Shown] {
            var shown: [Shown] = []
            for try await event in store.readAll(from: .position(appended[100].position)) { shown.append(Shown(event)) }
            return shown
        }
        #expect(try await onMainActor() == Array(appended[100...]))

        store.splitter.resume()
        var delivered: [Shown] = []
        for try await event in try store.subscribeToAll() {
            delivered.append(Shown(event))
            if delivered.count == appended.count { break }
        }
        #expect(delivered == appended)
        var ofStream: [Shown] = []
        let expected = appended.filter { $0.stream == Self.streams[1] }
        for try await event in try store.subscribe(to: Self.streams[1]) {
            ofStream.append(Shown(event))
            if ofStream.count == expected.count { break }
        }
        #expect(ofStream == expected)
        try await store.close()
    }

    /// Events hidden by metadata (truncated, trimmed to a count) and a deleted
    /// stream leave `$all` across page boundaries, whichever page they fall on.
    @Test func hiddenEventsLeaveEveryPage() async throws {
        let dir = TemporaryDirectory(inMemory: true)
        let (store, appended) = try await Self.store(dir)
        store.splitter.resume()
        try await store.setStreamMetadata(StreamMetadata(truncateBefore: 200), for: Self.streams[0])
        try await store.setStreamMetadata(StreamMetadata(maxCount: 3), for: Self.streams[1])
        let lastOfSecond = try #require(appended.last { $0.stream == Self.streams[1] }).version
        let shown = appended.filter { event in
            switch event.stream {
            case Self.streams[0]: event.version >= 200
            case Self.streams[1]: event.version + 3 > lastOfSecond
            default: true
            }
        }
        #expect(try await store.readAll().collect().map(Shown.init) == shown)
        #expect(try await store.readAll(maxCount: 513).collect().map(Shown.init) == Array(shown.prefix(513)))
        #expect(try await store.readAll(from: .end, direction: .backwards).collect().map(Shown.init) == shown.reversed())
        try await store.tombstoneStream(Self.streams[2])
        #expect(try await store.readAll().collect().map(Shown.init) == shown.filter { $0.stream != Self.streams[2] })
        try await store.close()
    }

    /// Which streams have metadata is taken once per `$all` page: metadata
    /// found when the store opens (listed from the catalog) and metadata set
    /// since (noted by the cache) both hide events, and streams without any
    /// show everything.
    @Test func metadataListedAtOpenAndSetSinceBothHideEvents() async throws {
        let dir = TemporaryDirectory(inMemory: true)
        let appended: [Shown]
        do {
            let (store, events) = try await Self.store(dir)
            store.splitter.resume()
            try await store.setStreamMetadata(StreamMetadata(truncateBefore: 400), for: Self.streams[1])
            appended = events
            try await store.close()
        }
        let store = try await EventStore.open(at: dir.path, configuration: .filePerStream(capacity: 4 << 20))
        let secondHidden = appended.filter { $0.stream != Self.streams[1] || $0.version >= 400 }
        #expect(try await store.readAll().collect().map(Shown.init) == secondHidden)
        try await store.setStreamMetadata(StreamMetadata(truncateBefore: 100), for: Self.streams[2])
        let bothHidden = secondHidden.filter { $0.stream != Self.streams[2] || $0.version >= 100 }
        #expect(try await store.readAll().collect().map(Shown.init) == bothHidden)
        #expect(try await store.readAll(from: .end, direction: .backwards).collect().map(Shown.init) == bothHidden.reversed())
        try await store.close()
    }

    @Test(arguments: [0, 1, 2, 3, 512])
    func aPageHandsOutItsEventsInOrder(count: Int) {
        let events = (0..<count).map { i in
            RecordedEvent(stream: "s\(i)", version: UInt64(i), position: UInt64(i) * 10, id: UUID(), type: "T\(i)",
                          data: Array(repeating: UInt8(i & 0xFF), count: i % 7), metadata: [], contentType: .json,
                          timestampNanoseconds: Int64(i))
        }
        var page = EventPage(events)
        var out: [RecordedEvent] = []
        while let event = page.next() { out.append(event) }
        #expect(out == events)
        #expect(page.isEmpty && page.next() == nil)
    }

    @Test func storedIDsAreTheIDsOfTheirBytes() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<1000 {
            let bytes = (0..<40).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let offset = Int.random(in: 0...24, using: &generator)
            var uuid: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
            withUnsafeMutableBytes(of: &uuid) { $0.copyBytes(from: bytes[offset..<(offset + 16)]) }
            let stored = bytes.withUnsafeBytes { UUID.stored(in: $0, at: offset) }
            #expect(stored == UUID(uuid: uuid))
            #expect(stored.uuidString == UUID(uuid: uuid).uuidString)
            #expect(stored.hashValue == UUID(uuid: uuid).hashValue)
        }
    }

    @Test func theTypeCacheGivesTheStringOfEachTypesBytes() {
        var cache = EventTypeCache()
        var sequence = Self.types + Self.types.reversed()
        // Same lengths, one byte apart at every index, for every length the words cover.
        for length in 1...20 {
            let base = Array(repeating: UInt8(ascii: "x"), count: length)
            for index in 0..<length {
                var changed = base
                changed[index] = UInt8(ascii: "y")
                sequence += [String(decoding: base, as: UTF8.self), String(decoding: changed, as: UTF8.self)]
            }
        }
        sequence.append(String(decoding: [0x52, 0xFF, 0x65], as: UTF8.self))
        for type in sequence {
            let bytes = Array(type.utf8)
            #expect(bytes.withUnsafeBytes { cache.type(of: $0) } == type)
            #expect(bytes.withUnsafeBytes { cache.type(of: $0) } == type, "again, from the cache")
        }
        // Invalid UTF-8 is repaired, as String(decoding:) does, from the cache too.
        let invalid: [UInt8] = [0x41, 0xFF, 0x42, 0x43, 0x44]
        #expect(invalid.withUnsafeBytes { cache.type(of: $0) } == String(decoding: invalid, as: UTF8.self))
        #expect(invalid.withUnsafeBytes { cache.type(of: $0) } == String(decoding: invalid, as: UTF8.self))
    }

    /// Headers parse the same in place (array slices at any offset) as from a
    /// copy (collections without contiguous storage), damaged ones included.
    @Test func blockHeadersParseTheSameInPlaceAndFromACopy() throws {
        let events = (0..<5).map { i in
            RecordedEvent(stream: "s", version: 40 + UInt64(i), position: UInt64(i) * 100, id: UUID(), type: "T",
                          data: Array(repeating: 7, count: 300), metadata: [], contentType: .json, timestampNanoseconds: 1)
        }
        var block: [UInt8] = []
        StreamBlock.encode(events[...], compress: true, into: &block)
        let padded = [1, 2, 3] + block + [9]
        let slice = padded[3..<(3 + block.count)]
        guard case .success(let inPlace) = StreamBlock.parseHeader(slice),
              case .success(let copied) = StreamBlock.parseHeader(slice.lazy.map { $0 })
        else { Issue.record("the header does not parse"); return }
        #expect(inPlace == copied)
        #expect(inPlace.firstVersion == 40 && inPlace.count == 5)
        var damaged = padded
        damaged[3 + 10] ^= 0x40
        let damagedSlice = damaged[3..<(3 + block.count)]
        #expect(StreamBlock.parseHeader(damagedSlice) == StreamBlock.parseHeader(damagedSlice.lazy.map { $0 }))
        #expect(StreamBlock.parseHeader(slice.prefix(10)) == .failure(.badLengths))
    }
}
