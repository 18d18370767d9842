import Foundation
import SystemPackage
import Testing
@testable import Ringstore

/// The split segments' codec, chains, recovery at open and housekeeping.
@Suite struct SplitSegmentTests {
    /// A raw block of versions `versions`, positions `position(v)`, with a recognisable payload.
    func block(_ versions: Range<UInt64>, stream: UInt32, position: (UInt64) -> UInt64) -> StreamBlock.RawBlock {
        var block = StreamBlock.RawBlock()
        for v in versions {
            let data = Array("{\"stream\":\(stream),\"version\":\(v)}".utf8)
            data.withUnsafeBytes { d in
                Array("Type".utf8).withUnsafeBytes { type in
                    block.add(version: v, position: position(v), id: UUID().uuid, timestampNanoseconds: Int64(v), json: true,
                              type: type, metadata: UnsafeRawBufferPointer(start: nil, count: 0), data: d)
                }
            }
        }
        return block
    }

    /// Versions held by `entries` (decoded), in order.
    func versions(_ entries: [SplitSegment.Entry]) throws -> [UInt64] {
        try entries.flatMap { try StreamBlock.decode($0.block, stream: "s", dictionary: $0.dictionary).get().map(\.version) }
    }

    @Test func entriesChainPerStreamAndReadBackFromAnyFloor() throws {
        let dir = TemporaryDirectory()
        let root = FilePath(dir.path)
        let segments = try SplitSegments(root: root, checkpoint: 0)
        // Three rounds, two streams, interleaved: each stream's chain crosses the other's entries.
        try segments.append([.init(stream: 0, blocks: [block(0..<3, stream: 0) { $0 * 10 }]),
                             .init(stream: 7, blocks: [block(0..<1, stream: 7) { 5 + $0 }])], compress: true)
        try segments.append([.init(stream: 7, blocks: [block(1..<4, stream: 7) { 100 + $0 }])], compress: true)
        try segments.append([.init(stream: 0, blocks: [block(3..<5, stream: 0) { 200 + $0 }, block(5..<6, stream: 0) { 300 + $0 }])],
                            compress: false)
        #expect(segments.nextVersion(of: 0) == 6)
        #expect(segments.nextVersion(of: 7) == 4)
        #expect(segments.nextVersion(of: 3) == 0, "a stream without entries")
        #expect(segments.head(of: 0)?.entries == 3)
        #expect(segments.head(of: 0)?.oldestVersion == 0)
        #expect(try versions(segments.entries(of: 0, from: 0)) == [0, 1, 2, 3, 4, 5])
        #expect(try versions(segments.entries(of: 0, from: 4)) == [3, 4, 5], "from the entry holding version 4")
        #expect(try versions(segments.entries(of: 0, from: 6)).isEmpty)
        #expect(try versions(segments.entries(of: 7, from: 2)) == [1, 2, 3])
        let first = try segments.entries(of: 7, from: 0)[0]
        let decoded = try StreamBlock.decode(first.block, stream: "seven", dictionary: first.dictionary).get()
        #expect(decoded.map(\.position) == [5] && decoded[0].stream == "seven")
    }

    /// A stream's chain listing is kept between reads: it must follow entries
    /// added since, be walked again for a lower floor, and let a read load only
    /// the entries that can hold the versions it asks for.
    @Test func listingsFollowNewEntriesAndReadOnlyWhatIsAskedFor() throws {
        let dir = TemporaryDirectory()
        let segments = try SplitSegments(root: FilePath(dir.path), checkpoint: 0)
        for round in UInt64(0)..<6 {
            try segments.append([.init(stream: 2, blocks: [block((round * 2)..<(round * 2 + 2), stream: 2) { 1000 * round + $0 }]),
                                 .init(stream: 5, blocks: [block(round..<(round + 1), stream: 5) { 1000 * round + 500 + $0 }])],
                                compress: true)
            #expect(try versions(segments.entries(of: 2, from: 0)) == Array(0..<(round * 2 + 2)), "round \(round)")
            #expect(try versions(segments.entries(of: 5, from: round)) == [round], "round \(round)")
        }
        #expect(try versions(segments.entries(of: 2, from: 3, through: 5)) == [2, 3, 4, 5], "only the entries holding 3...5")
        #expect(try versions(segments.entries(of: 2, from: 0, through: 0)) == [0, 1])
        #expect(try versions(segments.entries(of: 2, from: 11, through: 100)) == [10, 11])
        // Stream 5 was last listed from floor 5: a lower floor walks again.
        #expect(try versions(segments.entries(of: 5, from: 0)) == [0, 1, 2, 3, 4, 5])
    }

    @Test func reopeningKeepsEntriesBeforeTheCheckpointAndCutsTheRest() throws {
        let dir = TemporaryDirectory()
        let root = FilePath(dir.path)
        do {
            let segments = try SplitSegments(root: root, checkpoint: 0)
            try segments.append([.init(stream: 1, blocks: [block(0..<2, stream: 1) { 1000 + $0 }]),
                                 .init(stream: 2, blocks: [block(0..<1, stream: 2) { 1500 + $0 }])], compress: true)
            try segments.sync()
            // The next checkpoint's entries: records at or after position 2000.
            try segments.append([.init(stream: 1, blocks: [block(2..<4, stream: 1) { 2000 + $0 }]),
                                 .init(stream: 3, blocks: [block(0..<1, stream: 3) { 2100 + $0 }])], compress: true)
            try segments.sync()
        }
        // The journal's checkpoint is still at 2000: the second round is replayed, so it is cut.
        let reopened = try SplitSegments(root: root, checkpoint: 2000)
        #expect(reopened.nextVersion(of: 1) == 2)
        #expect(reopened.nextVersion(of: 2) == 1)
        #expect(reopened.nextVersion(of: 3) == 0)
        #expect(try versions(reopened.entries(of: 1, from: 0)) == [0, 1])
        // The replay appends again after the cut, chained to the surviving entries.
        try reopened.append([.init(stream: 1, blocks: [block(2..<3, stream: 1) { 2000 + $0 }])], compress: true)
        #expect(try versions(reopened.entries(of: 1, from: 0)) == [0, 1, 2])
        let size = reopened.segmentSizes()
        #expect(size.count == 1)
    }

    /// Found by the relaxed power-loss rounds: an entry written for a reader
    /// holds records beyond the scan, and the checkpoint's own entries follow
    /// it with earlier positions. Opening used to cut at the first entry from
    /// the checkpoint on, taking the later, needed ones with it (their records
    /// had left the journal): versions were missing for good. Now everything up
    /// to the last needed entry stays, across segments too.
    @Test func entriesBeforeTheCheckpointAfterOneBeyondItAreKept() throws {
        let dir = TemporaryDirectory()
        let root = FilePath(dir.path)
        do {
            let segments = try SplitSegments(root: root, checkpoint: 0, segmentBytes: 300)
            try segments.append([.init(stream: 1, blocks: [block(0..<2, stream: 1) { 1000 + $0 }])], compress: true)
            // For a reader: stream 2's records beyond the checkpoint to come.
            try segments.append([.init(stream: 2, blocks: [block(0..<2, stream: 2) { 2500 + $0 }])], compress: true)
            // The checkpoint's entries, positions before it (2000), in the next segment.
            try segments.append([.init(stream: 3, blocks: [block(0..<1, stream: 3) { 1900 + $0 }])], compress: true)
            // After the checkpoint: replayed, so cut.
            try segments.append([.init(stream: 1, blocks: [block(2..<3, stream: 1) { 2600 + $0 }])], compress: true)
            try segments.sync()
            #expect(segments.segmentSizes().count >= 2, "the entries span segments")
        }
        let reopened = try SplitSegments(root: root, checkpoint: 2000, segmentBytes: 300)
        #expect(try versions(reopened.entries(of: 3, from: 0)) == [0], "needed: the journal no longer holds it")
        #expect(try versions(reopened.entries(of: 2, from: 0)) == [0, 1], "intact and before a needed entry: kept")
        #expect(try versions(reopened.entries(of: 1, from: 0)) == [0, 1], "after the last needed entry: cut")
    }

    /// Found by the relaxed power-loss rounds: a chain moved whole into its
    /// file was forgotten before the file was synced, so the next entry linked
    /// nowhere; a power cut then took the copies from the file and every read of
    /// the stream failed ("entry links forward"). The link stays until the sync.
    @Test func anEntryAfterAnUnsyncedMoveChainsBackToTheMovedOnes() throws {
        let dir = TemporaryDirectory()
        let segments = try SplitSegments(root: FilePath(dir.path), checkpoint: 0)
        try segments.append([.init(stream: 4, blocks: [block(0..<2, stream: 4) { 10 + $0 }])], compress: true)
        let head = try #require(segments.head(of: 4))
        segments.moved(stream: 4, through: head.link, movedTo: 2, rawBytes: head.rawBytes, entries: head.entries)
        try segments.append([.init(stream: 4, blocks: [block(2..<3, stream: 4) { 20 + $0 }])], compress: true)
        // The file lost its copies (floor 0): the chain still leads to them.
        #expect(try versions(segments.entries(of: 4, from: 0)) == [0, 1, 2])
        // Synced: the moved entries are no longer needed, the new one stays.
        segments.forgetMoved([4])
        #expect(segments.head(of: 4)?.entries == 1)
        #expect(try versions(segments.entries(of: 4, from: 2)) == [2])
    }

    @Test func aTornOrDamagedTailIsCutAtOpen() throws {
        let dir = TemporaryDirectory()
        let root = FilePath(dir.path)
        var ends: [UInt64] = []
        do {
            let segments = try SplitSegments(root: root, checkpoint: 0)
            for round in 0..<3 {
                let v = UInt64(round)
                try segments.append([.init(stream: 4, blocks: [block(v..<(v + 1), stream: 4) { 10 * $0 }])], compress: true)
                ends.append(segments.end.offset == 0 ? 0 : UInt64(segments.end.offset))
            }
            try segments.sync()
        }
        let path = dir.child("split/" + SplitSegment.fileName(of: 1))
        // Tear the last entry: keep only part of it.
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        try data.prefix(Int(ends[2]) - 5).write(to: URL(fileURLWithPath: path))
        do {
            let reopened = try SplitSegments(root: root, checkpoint: .max / 4)
            #expect(reopened.nextVersion(of: 4) == 2)
            #expect(reopened.segmentSizes().first?.bytes == ends[1])
        }
        // A flipped byte in the second entry's payload, before the checkpoint: kept
        // (the journal no longer holds it) and reported, never cut.
        var damaged = try Data(contentsOf: URL(fileURLWithPath: path))
        damaged[Int(ends[1]) - 3] ^= 0x40
        try damaged.write(to: URL(fileURLWithPath: path))
        let again = try SplitSegments(root: root, checkpoint: .max / 4)
        #expect(again.nextVersion(of: 4) == 2)
        #expect(again.damagedEntries == [SplitSegment.Link(segment: 1, offset: UInt32(ends[0]))])
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as? UInt64 == ends[1])
        let entries = try again.entries(of: 4, from: 0)
        #expect(entries.count == 2)
        #expect(throws: StreamBlock.DecodeError.self) {
            try StreamBlock.decode(entries[1].block, stream: "s", dictionary: entries[1].dictionary).get()
        }
        // The same damage after the checkpoint is the replayed part, torn: cut.
        let replayed = try SplitSegments(root: root, checkpoint: 5)
        #expect(replayed.nextVersion(of: 4) == 1)
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as? UInt64 == ends[0])
    }

    @Test func damageInTheMiddleIsSkippedOverAndTheEntriesAfterItStayReadable() throws {
        let dir = TemporaryDirectory()
        let root = FilePath(dir.path)
        var offsets: [UInt64] = []
        do {
            let segments = try SplitSegments(root: root, checkpoint: 0)
            for stream in UInt32(0)..<3 {
                try segments.append([.init(stream: stream, blocks: [block(0..<2, stream: stream) { 100 * UInt64(stream) + $0 }])],
                                    compress: true)
                offsets.append(UInt64(try #require(segments.head(of: stream)).link.offset))
            }
            try segments.sync()
        }
        // Wreck the second entry's envelope: its length is unknown, the walk finds the third by its magic.
        let path = dir.child("split/" + SplitSegment.fileName(of: 1))
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        for i in 0..<8 { data[Int(offsets[1]) + i] = 0xEE }
        try data.write(to: URL(fileURLWithPath: path))
        let reopened = try SplitSegments(root: root, checkpoint: .max / 4)
        #expect(reopened.damagedEntries == [SplitSegment.Link(segment: 1, offset: UInt32(offsets[1]))])
        #expect(reopened.nextVersion(of: 0) == 2 && reopened.nextVersion(of: 2) == 2)
        #expect(reopened.nextVersion(of: 1) == 0, "the damaged entry's stream is not known from it")
        #expect(try versions(reopened.entries(of: 2, from: 0)) == [0, 1])
    }

    @Test func segmentsRotateChainsCrossThemAndMovedSegmentsGo() throws {
        let dir = TemporaryDirectory()
        let root = FilePath(dir.path)
        let segments = try SplitSegments(root: root, checkpoint: 0, segmentBytes: 400)
        var position: UInt64 = 0
        for round in 0..<6 {
            let v = UInt64(round)
            try segments.append([.init(stream: 0, blocks: [block(v..<(v + 1), stream: 0) { _ in position }]),
                                 .init(stream: 1, blocks: [block(v..<(v + 1), stream: 1) { _ in position + 1 }])], compress: true)
            position += 10
        }
        let sizes = segments.segmentSizes()
        #expect(sizes.count > 1, "several segments: \(sizes)")
        #expect(try versions(segments.entries(of: 0, from: 0)) == Array(0..<6))
        #expect(Set(try segments.locateEntries(in: sizes[0].number).map(\.stream)) == [0, 1])
        // Everything of both streams moved into their files: the chains are forgotten and
        // the oldest segment can go; a later read starts at the file's end.
        let head0 = try #require(segments.head(of: 0))
        segments.moved(stream: 0, through: head0.link, movedTo: 6, rawBytes: head0.rawBytes, entries: head0.entries)
        #expect(segments.head(of: 0)?.entries == 0, "kept until the file is synced")
        segments.forgetMoved([0])
        #expect(segments.head(of: 0) == nil)
        segments.remove(sizes[0].number)
        #expect(!FileManager.default.fileExists(atPath: dir.child("split/" + SplitSegment.fileName(of: sizes[0].number))))
        #expect(try versions(segments.entries(of: 1, from: 5)) == [5], "a walk stopping above the removed segment")
        try segments.sync()
        // Reopen: the removed segment's absence is fine once nothing needs it.
        let reopened = try SplitSegments(root: root, checkpoint: .max / 4, segmentBytes: 400)
        #expect(reopened.segmentSizes().count == sizes.count - 1)
    }

    /// A chain walked without a kept listing loads each entry with the read
    /// that finds its envelope when the entry fits ``SplitSegments/walkReadAhead``
    /// bytes, and with a second read when it does not: either way every entry
    /// asked for comes back whole, and the same as through the kept listing.
    @Test func aWalkLoadsSmallAndLargeEntriesWhole() throws {
        let dir = TemporaryDirectory()
        let root = FilePath(dir.path)
        var expected: [UInt64] = []
        do {
            let segments = try SplitSegments(root: root, checkpoint: 0)
            var next: UInt64 = 0
            // Small, large (past the read-ahead even compressed), small, large, small: the newest ends the file.
            for (round, count) in [2, 400, 1, 300, 3].enumerated() {
                let versions = next..<(next + UInt64(count))
                try segments.append([.init(stream: 4, blocks: [block(versions, stream: 4) { $0 }]),
                                     .init(stream: 8, blocks: [block(UInt64(round)..<UInt64(round + 1), stream: 8) { 9_000 + $0 }])],
                                    compress: round % 2 == 0)
                next += UInt64(count)
            }
            expected = Array(0..<next)
            try segments.sync()
        }
        // Reopened: no listing is kept, so the first reads walk the chain.
        let reopened = try SplitSegments(root: root, checkpoint: .max)
        let large = try reopened.entries(of: 4, from: 0)
        #expect(large.contains { $0.block.count > EntryChains.walkReadAhead }, "the test needs an entry past the read-ahead")
        #expect(try versions(large) == expected)
        #expect(try versions(reopened.entries(of: 8, from: 2, through: 3)) == [2, 3])
        // Through the listing the walk kept, and from a floor inside the large entries.
        #expect(try versions(reopened.entries(of: 4, from: 0)) == expected)
        #expect(try versions(reopened.entries(of: 4, from: 500, through: 703)) == Array(403..<706))
        let fresh = try SplitSegments(root: root, checkpoint: .max)
        #expect(try versions(fresh.entries(of: 4, from: 500, through: 703)) == Array(403..<706), "the same walked without a listing")
    }

    @Test func aDamagedEntryInAChainIsReportedWithFileAndOffset() throws {
        let dir = TemporaryDirectory()
        let root = FilePath(dir.path)
        let segments = try SplitSegments(root: root, checkpoint: 0)
        try segments.append([.init(stream: 9, blocks: [block(0..<2, stream: 9) { $0 }])], compress: false)
        let second = segments.end
        try segments.append([.init(stream: 9, blocks: [block(2..<4, stream: 9) { 10 + $0 }])], compress: false)
        try segments.sync()
        let path = dir.child("split/" + SplitSegment.fileName(of: 1))
        let first = try SplitSegment.firstEntryOffset(of: path)
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        try handle.seek(toOffset: first + 4)  // the first entry's stream number
        handle.write(Data([0xFF]))
        try handle.close()
        _ = second
        let error = try #require(throws: RingstoreError.self) { _ = try segments.entries(of: 9, from: 0) }
        #expect(error.code == .corruptData)
        #expect(error.path == path)
        #expect(error.offset == first)
    }

    @Test func fileNamesSortByNumberAndParseBack() {
        #expect(SplitSegment.fileName(of: 1) == "00000001.seg")
        #expect(SplitSegment.fileName(of: 0xABCDEF12) == "abcdef12.seg")
        #expect(SplitSegment.number(inFileName: "abcdef12.seg") == 0xABCDEF12)
        #expect(SplitSegment.number(inFileName: "abcdef12.seg.tmp") == nil)
        #expect(SplitSegment.number(inFileName: "1.seg") == nil)
    }
}
