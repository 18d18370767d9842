import Foundation
import SystemPackage
import Testing
@testable import Ringstore

/// The summaries of finished split segments (``SegmentSummary``): their codec,
/// opening from them, when opening must not trust them, and `verify`'s check.
@Suite struct SegmentSummaryTests {
    let helper = SplitSegmentTests()

    /// Appends `rounds` rounds over `streams` streams (each round a few of them,
    /// one to three events each) into segments of `segmentBytes`, syncing after
    /// each round as checkpoints do; positions grow by 10 a round from `position`.
    func fill(_ segments: SplitSegments, rounds: Int, streams: UInt32, from position: UInt64 = 0,
              next: inout [UInt32: UInt64]) throws {
        var random = SeededRandom(seed: 7)
        var position = position
        for _ in 0..<rounds {
            var items: [SplitSegments.Item] = []
            for stream in (0..<streams).filter({ _ in Int(random.next() % 3) == 0 }) {
                let first = next[stream, default: 0]
                let count = UInt64(1 + Int(random.next() % 3))
                let at = position
                items.append(.init(stream: stream, blocks: [helper.block(first..<(first + count), stream: stream) { at + $0 - first }]))
                next[stream] = first + count
                position += 10
            }
            try segments.append(items, compress: true)
            try segments.sync()
        }
    }

    /// A folder of segments of 2,000 bytes filled by `rounds` rounds over 10
    /// streams (see ``fill(_:rounds:streams:from:next:)``), closed; each stream's next version.
    func filledFolder(rounds: Int) throws -> (TemporaryDirectory, [UInt32: UInt64]) {
        let dir = TemporaryDirectory()
        var next: [UInt32: UInt64] = [:]
        let segments = try SplitSegments(root: FilePath(dir.path), checkpoint: 0, segmentBytes: 2000)
        try fill(segments, rounds: rounds, streams: 10, next: &next)
        return (dir, next)
    }

    func summaryFiles(in root: FilePath) throws -> [String] {
        try StorageDirectory.entries(of: root.appending("split")).filter { SegmentSummary.number(inFileName: $0) != nil }.sorted()
    }

    /// Every stream's head, from 0 through `streams`.
    func heads(_ segments: SplitSegments, streams: UInt32) -> [SplitSegments.Head?] {
        (0...streams).map { segments.head(of: $0) }
    }

    @Test func aSummaryRoundTripsAndEveryFlippedByteIsRefused() throws {
        var builder = SegmentSummary.Builder(segment: 3)
        func header(_ first: UInt64, _ count: Int, raw: Int, position: UInt64) -> StreamBlock.Header {
            StreamBlock.Header(compressed: true, firstVersion: first, firstPosition: position, count: count, rawLength: raw,
                               storedLength: 10, payloadCRC: 0)
        }
        builder.add(stream: 9, offset: 100, header: header(0, 2, raw: 300, position: 50))
        builder.add(stream: 2, offset: 200, header: header(5, 1, raw: 100, position: 70))
        builder.add(stream: 9, offset: 300, header: header(2, 3, raw: .max, position: 60))
        let summary = try #require(builder.summary(size: 400))
        #expect(summary.rows == [.init(stream: 2, newestOffset: 200, next: 6, oldest: 5, rawBytes: 100, entries: 1),
                                 .init(stream: 9, newestOffset: 300, next: 5, oldest: 0, rawBytes: .max, entries: 2)])
        #expect(summary.lastFirstPosition == 70 && summary.segmentSize == 400)
        let bytes = summary.encoded()
        #expect(SegmentSummary.decode(bytes, segment: 3) == summary)
        #expect(SegmentSummary.decode(bytes, segment: 4) == nil, "another segment's")
        #expect(SegmentSummary.decode(Array(bytes.dropLast()), segment: 3) == nil, "cut")
        for offset in bytes.indices {
            var damaged = bytes
            damaged[offset] ^= 0x10
            #expect(SegmentSummary.decode(damaged, segment: 3) == nil, "flipped at \(offset)")
        }
        // Random rows under a matching checksum: refused or parsed, never a crash.
        var random = SeededRandom(seed: 3)
        for _ in 0..<500 {
            var garbage = Array(bytes[..<SegmentSummary.headerSize])
            garbage[12] = UInt8(random.next() % 8)
            garbage += (0..<Int(random.next() % 40)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            LittleEndian.append(CRC32C.checksum(garbage), to: &garbage)
            if let parsed = SegmentSummary.decode(garbage, segment: 3) {
                #expect(parsed.encoded() == garbage, "what parses encodes back the same")
            }
        }
        var spoilt = builder
        spoilt.spoil()
        #expect(spoilt.summary(size: 400) == nil)
    }

    @Test func numbersRoundTripAndOverlongOnesAreRefused() {
        for value: UInt64 in [0, 1, 127, 128, 300, 1 << 32, UInt64.max - 1, .max] {
            var bytes: [UInt8] = []
            LEB128.append(value, to: &bytes)
            var at = 0
            let read = bytes.withUnsafeBytes { LEB128.read($0, at: &at, end: bytes.count) }
            #expect(read == value && at == bytes.count, "\(value)")
            var short = 0
            #expect(bytes.withUnsafeBytes { LEB128.read($0, at: &short, end: bytes.count - 1) } == nil, "cut: \(value)")
        }
        let overlong: [UInt8] = Array(repeating: 0xFF, count: 9) + [0x02]  // bit 64 set
        var at = 0
        #expect(overlong.withUnsafeBytes { LEB128.read($0, at: &at, end: overlong.count) } == nil)
        let padded: [UInt8] = [0x81, 0x00]  // 1, in two bytes
        at = 0
        #expect(padded.withUnsafeBytes { LEB128.read($0, at: &at, end: padded.count) } == nil)
    }

    /// The heads built from summaries are the heads a walk builds, and every
    /// finished segment was taken from its summary.
    @Test func openingFromSummariesGivesTheHeadsAWalkGives() throws {
        let dir = TemporaryDirectory()
        let root = FilePath(dir.path)
        var next: [UInt32: UInt64] = [:]
        let written: [SplitSegments.Head?]
        let segmentCount: Int
        do {
            let segments = try SplitSegments(root: root, checkpoint: 0, segmentBytes: 2000)
            try fill(segments, rounds: 40, streams: 30, next: &next)
            written = heads(segments, streams: 30)
            segmentCount = segments.segmentSizes().count
        }
        #expect(segmentCount > 4)
        #expect(try summaryFiles(in: root).count == segmentCount - 1, "every finished segment has one")
        let opened = try SplitSegments(root: root, checkpoint: .max / 2, segmentBytes: 2000)
        #expect(opened.segmentsOpenedFromSummaries == segmentCount - 1)
        #expect(heads(opened, streams: 30) == written)
        for stream in UInt32(0)..<30 {
            #expect(try helper.versions(opened.entries(of: stream, from: 0)) == Array(0..<next[stream, default: 0]), "stream \(stream)")
        }
        // Without them, the walk agrees.
        for name in try summaryFiles(in: root) { try StorageDirectory.removeFile(root.appending("split").appending(name)) }
        let walked = try SplitSegments(root: root, checkpoint: .max / 2, segmentBytes: 2000)
        #expect(walked.segmentsOpenedFromSummaries == 0)
        #expect(heads(walked, streams: 30) == written)
    }

    /// A segment whose entries reach past the checkpoint is walked (opening may
    /// cut it), and its summary goes with the cut; a damaged summary is walked
    /// past and written again by the next sync; one left without its segment goes.
    @Test func openingWalksWhereASummaryCannotBeTrustedAndItIsWrittenAgain() throws {
        let (dir, _) = try filledFolder(rounds: 20)
        let root = FilePath(dir.path)
        let split = root.appending("split")
        let names = try StorageDirectory.entries(of: split).compactMap(SplitSegment.number(inFileName:)).sorted()
        #expect(names.count > 3)
        // A checkpoint inside the second-to-last finished segment: from there on, entries are replayed.
        let cutSegment = names[names.count - 3]
        let summary = try #require(SegmentSummary.read(segment: cutSegment, in: split))
        let checkpoint = summary.lastFirstPosition
        let reference: [SplitSegments.Head?]
        do {
            // What a walk alone keeps, on a copy without summaries.
            let copy = TemporaryDirectory()
            try FileManager.default.copyItem(atPath: split.string, toPath: copy.child("split"))
            for name in try summaryFiles(in: FilePath(copy.path)) { try FileManager.default.removeItem(atPath: copy.child("split/" + name)) }
            reference = heads(try SplitSegments(root: FilePath(copy.path), checkpoint: checkpoint, segmentBytes: 2000), streams: 10)
        }
        // Damage one summary before the cut, and leave one without its segment.
        let damaged = names[1]
        try AdminFixture.flip(split.appending(SegmentSummary.fileName(of: damaged)).string, at: 40)
        try Data(SegmentSummary(segment: 999, segmentSize: 1, lastFirstPosition: 0, rows: []).encoded())
            .write(to: URL(fileURLWithPath: split.appending(SegmentSummary.fileName(of: 999)).string))
        let opened = try SplitSegments(root: root, checkpoint: checkpoint, segmentBytes: 2000)
        #expect(heads(opened, streams: 10) == reference)
        let kept = opened.segmentSizes().map(\.number)
        #expect(kept.last == cutSegment, "cut inside it: \(kept)")
        #expect(opened.segmentsOpenedFromSummaries == kept.count - 2, "all but the damaged one and the cut one")
        let files = try summaryFiles(in: root)
        #expect(!files.contains(SegmentSummary.fileName(of: 999)), "no summary without its segment")
        #expect(!files.contains(SegmentSummary.fileName(of: cutSegment)), "the cut segment's summary went with the cut")
        #expect(SegmentSummary.read(segment: damaged, in: split) == nil)
        // The next sync writes the damaged one again, by walking its segment.
        try opened.sync()
        #expect(SegmentSummary.read(segment: damaged, in: split) != nil)
        let again = try SplitSegments(root: root, checkpoint: checkpoint, segmentBytes: 2000)
        #expect(again.segmentsOpenedFromSummaries == kept.count - 1)
        #expect(heads(again, streams: 10) == reference)
    }

    /// A segment opened with entries in it (the current one after a reopen)
    /// gets its summary by a walk once it is finished; one the mover deletes
    /// takes its summary with it.
    @Test func aSegmentFinishedAfterAReopenIsSummarizedAndADeletedOneTakesItsSummary() throws {
        var (dir, next) = try filledFolder(rounds: 6)
        let root = FilePath(dir.path)
        let split = root.appending("split")
        let reopened = try SplitSegments(root: root, checkpoint: .max / 2, segmentBytes: 2000)
        let current = try #require(reopened.segmentSizes().last?.number)
        try fill(reopened, rounds: 10, streams: 10, from: 1 << 40, next: &next)
        try reopened.sync()  // a second sync: the walk-built summary waits for one with nothing else to walk
        let walked = try #require(SegmentSummary.read(segment: current, in: split))
        let size = try #require(reopened.segmentSizes().first { $0.number == current }?.bytes)
        #expect(walked.segmentSize == size)
        let segment = try #require(try SplitSegment.open(number: current, in: split))
        #expect(try SplitSegments.summarize(segment, end: size).flatMap { SegmentSummary.decode($0, segment: current) } == walked)
        let oldest = try #require(reopened.segmentSizes().first?.number)
        reopened.remove(oldest)
        #expect(!FileManager.default.fileExists(atPath: split.appending(SegmentSummary.fileName(of: oldest)).string))
    }

    /// `verify` finds a damaged summary and names its file and the byte, and
    /// one that disagrees with its segment though intact.
    @Test func verifyNamesADamagedOrWrongSummary() async throws {
        let dir = TemporaryDirectory()
        let path = dir.child("store")
        // 2 MB of incompressible events, in batches, over streams too many to ripen
        // (half the segments' budget, so the mover leaves the finished segments be).
        let store = try await EventStore.open(at: path, configuration: .testing())
        var random = SeededRandom(seed: 11)
        for batch in 0..<400 {
            let events = (0..<25).map { _ in
                EventData(type: "t", data: (0..<200).map { _ in UInt8(truncatingIfNeeded: random.next()) }, contentType: .binary)
            }
            _ = try await store.append(to: "s-\(batch % 80)", events: events)
        }
        try await store.close()
        let split = FilePath(path).appending("split")
        let summaries = try summaryFiles(in: FilePath(path))
        #expect(!summaries.isEmpty, "the fixture's store finished segments")
        try AdminFixture.expectVerifiesClean(at: path, "as built")
        do {
            // `stats` counts them, and they are part of what compaction rewrites.
            let session = try MaintenanceSession(directory: path)
            let inventory = session.verify().inventory
            session.close()
            #expect(inventory.segmentSummaries == summaries.count && inventory.segmentSummaryBytes > 0)
            #expect(inventory.rewritableBytes == StoreVerifier(directory: FilePath(path)).sizes().rewritable)
        }
        let name = summaries[0]
        let number = try #require(SegmentSummary.number(inFileName: name))
        let original = try StorageFile.readWhole(split.appending(name))
        try AdminFixture.flip(split.appending(name).string, at: 45)
        func problems() throws -> [MaintenanceProblem] {
            let session = try MaintenanceSession(directory: path)
            defer { session.close() }
            return session.verify().problems
        }
        var found = try problems()
        #expect(found.count == 1 && found[0].file == "split/\(name)" && found[0].offset == 45 && !found[0].harmless, "\(found)")
        // Intact but wrong: a row's entry count changed and the checksum made to match.
        var wrong = try #require(SegmentSummary.decode(original, segment: number))
        wrong.rows[0].entries += 1
        try Data(wrong.encoded()).write(to: URL(fileURLWithPath: split.appending(name).string))
        found = try problems()
        // The first row is six numbers of one to five bytes, the entries last.
        let rowEnd = UInt64(SegmentSummary.headerSize + 6 * 5)
        #expect(found.count == 1 && found[0].what.contains("disagrees") && found[0].offset.map { $0 > 32 && $0 < rowEnd } == true,
                "\(found)")
    }
}
