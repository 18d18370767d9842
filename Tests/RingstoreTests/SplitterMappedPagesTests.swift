import SystemPackage
import Testing
@testable import Ringstore

@Suite struct SplitterMappedPagesTests {
    /// Pages read through the ring's mapping stay resident until released; a
    /// release waits for a run of at least `step`, releases the whole pages
    /// before the given position (not the one holding it), and a later read
    /// maps released pages again with the same bytes.
    @Test func releasesWholePagesBehindInRunsOfAStep() throws {
        let dir = TemporaryDirectory()
        let capacity: UInt64 = 8 << 20
        let ring = try RingFile.create(at: FilePath(dir.child("journal.ring")), capacity: capacity, header: [UInt8](repeating: 7, count: 64))
        let bytes = (0..<Int(capacity)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try bytes.withUnsafeBytes { try ring.write($0, at: 0) }
        func touch(_ range: Range<UInt64>) -> UInt64 {
            ring.withMappedBytes(physical: range.lowerBound, count: range.count) { mapped in
                stride(from: 0, to: mapped.count, by: 4096).reduce(0) { $0 &+ UInt64(mapped[$1]) }
            }
        }
        func resident() throws -> Int { try #require(try SplitterTests.residentBytes(ofMapping: "journal.ring", in: dir.path)) }
        let read = touch(0..<(4 << 20))
        // At least what was read; the kernel may map cached pages around it too.
        let before = try resident()
        #expect(before >= 4 << 20, "reading maps the pages")

        var pages = SplitterMappedPages(releasedTo: 0)
        pages.release(before: SplitterMappedPages.step - 1, in: ring)
        #expect(pages.releasedTo == 0, "less than a step: nothing released yet")
        #expect(try resident() >= 4 << 20)

        let position: UInt64 = 3 << 20 + 100  // inside a page: that page stays
        pages.release(before: position, in: ring)
        #expect(pages.releasedTo == 3 << 20)
        let left = try resident()
        #expect(left <= before - (3 << 20) + 4096, "the first 3 MiB leave the mapping: \(before) bytes before, \(left) after")
        #expect(touch(0..<(4 << 20)) == read, "released pages read back the same")

        pages.released(before: 2 << 20)
        #expect(pages.releasedTo == 3 << 20, "never moves back")
        pages.released(before: 5 << 20 + 1)
        #expect(pages.releasedTo == 5 << 20)
    }

    /// A checkpoint's writing whose records spread over more than half the ring
    /// (checkpoints were held back meanwhile), each stream's records all over
    /// it, reads them with copies instead of through the mapping, and every
    /// stream reads back whole and in order. The writing of a checkpoint over
    /// less of the ring copies nothing, nor does one over as much whose streams'
    /// records each lie together (large appends: the pass lets go of the
    /// mapping as it goes).
    @Test func aPassOverMoreThanHalfTheRingCopiesItsRecords() async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.child("store"), configuration: .testing(capacity: 1 << 20))
        let streams = 50
        func data(_ i: Int) -> [UInt8] { Array(repeating: UInt8(truncatingIfNeeded: i), count: 900) + withUnsafeBytes(of: UInt64(i).littleEndian, Array.init) }
        func append(_ range: Range<Int>) async throws {
            for i in range { _ = try await store.append(to: "s-\(i % streams)", events: [EventData(type: "t", data: data(i), contentType: .binary)]) }
        }
        try await append(0..<100)  // records of 976 bytes: about a tenth of the ring
        await store.splitter.checkpointForTesting()
        #expect(store.splitter.copiedRecords.load(ordering: .relaxed) == 0, "a pass within half the ring reads through the mapping")

        store.splitter.testing.checkpointsHeld.store(true, ordering: .relaxed)
        try await append(100..<800)  // two thirds of the ring past the checkpoint
        await store.splitter.checkpointForTesting()
        let copied = store.splitter.copiedRecords.load(ordering: .relaxed)
        #expect(copied == 700, "the held-back pass copies each of its records once: \(copied)")
        for stream in 0..<streams {
            let events = try await store.read(stream: "s-\(stream)").collect()
            #expect(events.map(\.data) == stride(from: stream, to: 800, by: streams).map(data), "stream s-\(stream)")
            #expect(events.map(\.version) == Array(0..<UInt64(800 / streams)))
        }

        // 45 streams of 15 events each, appended whole: 0.63 of the ring again. (Each
        // under the 16 KiB that would send a stream to a file of its own at once.)
        for stream in 0..<45 {
            _ = try await store.append(to: "together-\(stream)", events: (0..<15).map { EventData(type: "t", data: data(stream * 15 + $0), contentType: .binary) })
        }
        await store.splitter.checkpointForTesting()
        #expect(store.splitter.copiedRecords.load(ordering: .relaxed) == copied, "records that lie together are read through the mapping")
        for stream in 0..<45 {
            #expect(try await store.read(stream: "together-\(stream)").collect().map(\.data) == (0..<15).map { data(stream * 15 + $0) })
        }
        try await store.close()
    }

    /// The lowest first position from each index on matches a plain search,
    /// for lists around the chunk size, in any order, with streams that have
    /// no positions left.
    @Test func lowestPendingPositionMatchesASearch() {
        var generator = SeededRandom(seed: 42)
        for count in [0, 1, 2, 63, 64, 65, 127, 128, 129, 300] {
            var list: [PendingStream] = []
            for number in 0..<count {
                var stream = PendingStream(number: UInt32(number), name: "s\(number)")
                if generator.next() % 7 != 0 {
                    let first = generator.next() % 1_000_000
                    stream.positions.append(contentsOf: [first, first + 10 + generator.next() % 1000])
                }
                list.append(stream)
            }
            let lowest = LowestPendingPosition(list)
            for index in 0...count {
                let expected = list[index...].compactMap(\.positions.first).min() ?? .max
                #expect(lowest.from(index) == expected, "\(count) streams, from \(index)")
            }
        }
    }
}
