import Foundation
import SystemPackage
import Testing
@testable import Ringstore

/// The segment walk's lookahead (``SplitSegment/walk(checkingPayloads:chunkBytes:lookahead:_:)``)
/// is a hint for cache prefetching: when given, it names the stream of the entry that
/// many entries ahead, and it never changes what the walk visits, even over damage.
@Suite struct SegmentWalkLookaheadTests {
    /// Entries of segments with many small interleaved streams.
    func segments(in root: FilePath) throws -> SplitSegment {
        let segments = try SplitSegments(root: root, checkpoint: 0)
        var items: [SplitSegments.Item] = []
        for round in 0..<40 {
            for stream in UInt32(0)..<25 where (Int(stream) + round) % 3 != 0 {
                var block = StreamBlock.RawBlock()
                let version = UInt64(round)
                let data = Array("{\"s\":\(stream),\"r\":\(round)}".utf8)
                data.withUnsafeBytes { d in
                    Array("T".utf8).withUnsafeBytes { type in
                        block.add(version: version, position: UInt64(round * 100) + UInt64(stream), id: UUID().uuid, timestampNanoseconds: 1,
                                  json: true, type: type, metadata: UnsafeRawBufferPointer(start: nil, count: 0), data: d)
                    }
                }
                items.append(.init(stream: stream, blocks: [block]))
            }
            try segments.append(items, compress: round % 2 == 0)
            items = []
        }
        let number = try #require(try StorageDirectory.entries(of: root.appending("split")).compactMap(SplitSegment.number(inFileName:)).min())
        return try #require(try SplitSegment.open(number: number, in: root.appending("split")))
    }

    /// What a walk visits (offset and stream of each entry, damaged stretches) and the hints it gave.
    func walk(_ segment: SplitSegment, chunkBytes: Int, lookahead: Int) throws -> (visits: [String], streams: [UInt32], hints: [UInt32?], end: UInt64) {
        var visits: [String] = []
        var streams: [UInt32] = []
        var hints: [UInt32?] = []
        let end = try segment.walk(checkingPayloads: true, chunkBytes: chunkBytes, lookahead: lookahead) { visit, _, upcoming in
            switch visit {
            case .entry(let offset, let envelope, _, let intact):
                visits.append("entry \(offset) \(envelope.stream) \(intact)")
                streams.append(envelope.stream)
                hints.append(upcoming)
            case .damaged(let offset, let next):
                visits.append("damaged \(offset)..<\(next)")
            }
            return true
        }
        return (visits, streams, hints, end)
    }

    @Test(arguments: [1 << 20, 4096, 300])
    func theHintNamesTheStreamThatManyEntriesAhead(chunkBytes: Int) throws {
        let dir = TemporaryDirectory()
        let segment = try segments(in: FilePath(dir.path))
        let plain = try walk(segment, chunkBytes: chunkBytes, lookahead: 0)
        #expect(plain.hints.allSatisfy { $0 == nil })
        let ahead = try walk(segment, chunkBytes: chunkBytes, lookahead: 3)
        #expect(ahead.visits == plain.visits && ahead.end == plain.end)
        #expect(ahead.streams.count > 100)
        var given = 0
        for (i, hint) in ahead.hints.enumerated() {
            guard let hint else { continue }
            given += 1
            #expect(i + 3 < ahead.streams.count && hint == ahead.streams[i + 3], "entry \(i)")
        }
        // A buffer holding the whole segment names every entry's but the last three's; one of a few
        // dozen entries most; one of three entries, none (the entry three ahead is never in it).
        let least = chunkBytes == 1 << 20 ? ahead.streams.count - 3 : chunkBytes == 4096 ? ahead.streams.count / 4 : 0
        #expect(given >= least, "\(given) of \(ahead.streams.count)")
    }

    /// Damaged envelopes (a flipped stream number, a flipped length) may give a wrong hint,
    /// never a different walk.
    @Test(arguments: [UInt64(4), 16])
    func damageChangesNoVisit(field: UInt64) throws {
        let dir = TemporaryDirectory()
        let root = FilePath(dir.path)
        let segment = try segments(in: root)
        var offsets: [UInt64] = []
        _ = try segment.walk { visit in
            if case .entry(let offset, _, _, _) = visit { offsets.append(offset) }
            return true
        }
        let path = segment.path.string
        try AdminFixture.flip(path, at: offsets[offsets.count / 2] + field)
        try AdminFixture.flip(path, at: offsets[offsets.count / 2 + 5] + field + 1)
        let damaged = try #require(try SplitSegment.open(number: segment.number, in: root.appending("split")))
        for chunkBytes in [1 << 20, 300] {
            let plain = try walk(damaged, chunkBytes: chunkBytes, lookahead: 0)
            let ahead = try walk(damaged, chunkBytes: chunkBytes, lookahead: 8)
            #expect(plain.visits.contains { $0.hasPrefix("damaged") })
            #expect(ahead.visits == plain.visits && ahead.end == plain.end)
        }
    }

    /// Prefetching is a hint: indexes and ranges outside the table ask for nothing.
    @Test func prefetchOutsideTheTableAsksForNothing() {
        var rows = [StreamTally](repeating: StreamTally(name: "s"), count: 3)
        for index in [-1, 0, 2, 3, Int.max] { Prefetch.element(of: &rows, at: index, bytes: StreamTally.indexHot) }
        let bytes = [UInt8](repeating: 1, count: 100)
        bytes.withUnsafeBytes { b in
            for (at, count) in [(0, 100), (99, 1), (100, 1), (-1, 4), (50, 51), (Int.max, 2), (0, 0)] { Prefetch.bytes(b, at: at, count: count) }
        }
        #expect(rows.count == 3)
        // The rows' hot fields come first, within two cache lines.
        #expect(StreamTally.segmentHot <= StreamTally.indexHot && StreamTally.indexHot <= 128)
    }
}
