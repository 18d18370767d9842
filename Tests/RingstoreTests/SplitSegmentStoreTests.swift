import Foundation
import SystemPackage
import Testing
@testable import Ringstore

/// The split segments through the store: small streams split into segments,
/// moved into their files by the mover within its budget, and what a crash in
/// the middle of a move leaves.
@Suite struct SplitSegmentStoreTests {
    /// A move writes a block into the stream's file; a crash before the file is
    /// synced may leave that block torn. The segment still holds its events, so
    /// opening cuts the torn block (it used to be reported as damage the journal
    /// could not repair) and the next move writes it again.
    @Test func aTornBlockFromAnInterruptedMoveIsCutAndMovedAgain() async throws {
        let dir = TemporaryDirectory()
        var ids: [UUID] = []
        do {
            let store = try await EventStore.open(at: dir.path, configuration: .filePerStream())
            for round in 0..<3 {
                let events = (0..<5).map { event("round \(round) event \($0)") }
                ids += events.map(\.id)
                try await store.append(to: "moved", events: events)
                try await store.append(to: "other", events: [event("\(round)")])
                try await store.flush()
            }
            try await store.close()
        }
        let path = dir.path + "/" + StreamNaming.relativePath("moved").string
        do {
            // Move the stream's entries into its file without deleting the segment, as a
            // mover interrupted before its sync would leave them, then tear the last block.
            let store = try await EventStore.open(at: dir.path, configuration: .filePerStream())
            let number = try #require(store.catalog.number(of: "moved"))
            #expect(try store.split.move(stream: "moved", number: number) == .file)
            try await store.close()
        }
        try tearEnd(of: path, bytes: 7)

        let store = try await EventStore.open(at: dir.path, configuration: .filePerStream())
        #expect(try await store.read(stream: "moved").collect().map(\.id) == ids)
        let number = try #require(store.catalog.number(of: "moved"))
        #expect(try store.split.move(stream: "moved", number: number) == .file, "moved again")
        #expect(try store.split.fileNextVersion(of: "moved") == 15)
        #expect(try await store.read(stream: "moved").collect().map(\.id) == ids)
        try await store.close()
    }

    /// An entry of many events (an append of a hundred, say) is copied into the
    /// stream file as it is when it would start a block of its own anyway; a
    /// small entry is joined, and a large one too while it still fits in the
    /// block being built. Every event reads back the same, before and after a
    /// reopen, and the files verify.
    @Test func aLargeSegmentEntryIsCopiedWholeIntoTheStreamFile() async throws {
        let dir = TemporaryDirectory()
        var ids: [UUID] = []
        // One small entry first: a stream with entries in the segments keeps going
        // there (a stream without any would be written to its own file).
        for round in 0..<4 {
            let store = try await EventStore.open(at: dir.path, configuration: .filePerStream())
            store.splitter.mover.pause()  // the chain passes 64 KiB: the move is this test's own
            let events = round == 0 ? [event("small")]
                : (0..<100).map { event("round \(round) event \($0) " + String(repeating: "x", count: 400)) }
            ids += events.map(\.id)
            try await store.append(to: "big", events: events)
            try await store.close()  // its checkpoint writes the stream's pending events as one entry
        }
        do {
            let store = try await EventStore.open(at: dir.path, configuration: .filePerStream())
            store.splitter.mover.pause()
            let number = try #require(store.catalog.number(of: "big"))
            #expect(try store.split.segments.entries(of: number, from: 0).map(\.header.count) == [1, 100, 100, 100])
            #expect(try store.split.move(stream: "big", number: number) == .file)
            // The small entry and the first large one share a block; the next large one
            // would take that block past 64 KiB, so it and the last are copied.
            #expect(store.split.movedEntriesCopied.load(ordering: .relaxed) == 2)
            #expect(store.split.movedEntries.load(ordering: .relaxed) == 4)
            #expect(try store.split.fileNextVersion(of: "big") == 301)
            #expect(try await store.read(stream: "big").collect().map(\.id) == ids)
            try await store.close()
        }
        // A power cut before the moved file was synced may tear its last block (a
        // copied one here): opening cuts it (the segments still hold its versions)
        // and the next move copies it again.
        let path = dir.path + "/" + StreamNaming.relativePath("big").string
        try tearEnd(of: path, bytes: 7)
        do {
            let store = try await EventStore.open(at: dir.path, configuration: .filePerStream())
            store.splitter.mover.pause()
            #expect(try await store.read(stream: "big").collect().map(\.id) == ids)
            #expect(try store.split.fileNextVersion(of: "big") == 201, "the torn block is cut")
            let number = try #require(store.catalog.number(of: "big"))
            #expect(try store.split.move(stream: "big", number: number) == .file)
            #expect(store.split.movedEntriesCopied.load(ordering: .relaxed) == 1)
            #expect(try store.split.fileNextVersion(of: "big") == 301)
            try await store.close()
        }
        try await moveSegmentsIntoStreamFiles(dir.path)
        let store = try await EventStore.open(at: dir.path, configuration: .filePerStream())
        #expect(try await store.read(stream: "big").collect().map(\.id) == ids)
        #expect(try await store.read(stream: "big", from: .version(150), maxCount: 3).collect().map(\.version) == [150, 151, 152])
        try await store.close()
        try AdminFixture.expectVerifiesClean(at: dir.path, "after the move")
    }

    /// With a small budget the mover keeps the segments near it: the oldest are
    /// moved into stream files and deleted while ingest goes on, and every event
    /// reads back the same, before and after a reopen.
    @Test func theMoverKeepsTheSegmentsWithinTheirBudget() async throws {
        let dir = TemporaryDirectory()
        var configuration = Configuration.filePerStream(capacity: 256 << 10)
        configuration.splitSegmentBudget = 256 << 10
        configuration.journalFullWait = .seconds(60)
        let store = try await EventStore.open(at: dir.path, configuration: configuration)
        var expected: [String: [UUID]] = [:]
        for i in 0..<6_000 {
            let stream = "s-\(i % 200)"
            let e = event("event \(i) " + String(repeating: "p", count: 100))
            try await store.append(to: stream, events: [e])
            expected[stream, default: []].append(e.id)
        }
        try await store.flush()
        // The mover works after checkpoints: wait for it to bring the segments under twice the budget.
        try await eventually(timeout: .seconds(60)) { () async throws -> Void in
            let total = store.split.segments.totalBytes
            if total > 2 * (256 << 10) || store.splitter.mover.segmentsDeleted.load(ordering: .relaxed) == 0 { throw CancellationError() }
        }
        for (stream, ids) in expected {
            #expect(try await store.read(stream: stream).collect().map(\.id) == ids, "\(stream)")
        }
        try await store.close()
        let reopened = try await EventStore.open(at: dir.path, configuration: configuration)
        for (stream, ids) in expected {
            #expect(try await reopened.read(stream: stream).collect().map(\.id) == ids, "\(stream)")
        }
        #expect(try await reopened.readAll().collect().count == 6_000)
        try await reopened.close()
    }

    /// The mover empties the oldest segment reading the entries one walk of
    /// that segment located (`SplitSegments.locateEntries`), not each stream's
    /// chain: streams whose entries span several segments, one of them moved
    /// into its file part-way (its oldest entries then lie below the file's
    /// end), read back whole after each segment is emptied, and after a reopen.
    @Test func emptyingTheOldestSegmentsOneByOneKeepsEveryStreamWhole() async throws {
        let dir = TemporaryDirectory()
        var configuration = Configuration.filePerStream(capacity: 256 << 10)
        configuration.splitSegmentBudget = 256 << 10  // segments of 256 KiB
        let store = try await EventStore.open(at: dir.path, configuration: configuration)
        store.splitter.mover.pause()
        var expected: [String: [UUID]] = [:]
        func append(_ count: Int, from first: Int) async throws {
            for i in first..<(first + count) {
                let stream = "s-\(i % 40)"
                // Random hex, so that the segments fill (a repeated letter compresses to nothing).
                let e = event("event \(i) " + (0..<5).map { _ in UUID().uuidString }.joined())
                try await store.append(to: stream, events: [e])
                expected[stream, default: []].append(e.id)
            }
        }
        func expectEveryStream(_ context: String) async throws {
            for (stream, ids) in expected {
                #expect(try await store.read(stream: stream).collect().map(\.id) == ids, "\(context): \(stream)")
            }
        }
        try await append(2_000, from: 0)
        try await store.flush()
        try await eventually { () async throws -> Void in  // split into segments
            if store.split.segments.segmentSizes().count < 2 { throw CancellationError() }
        }
        let number = try #require(store.catalog.number(of: "s-0"))
        #expect(try store.split.move(stream: "s-0", number: number) == .file)
        try await append(3_000, from: 2_000)
        try await store.flush()
        try await eventually { () async throws -> Void in
            if store.split.segments.segmentSizes().count < 4 { throw CancellationError() }
        }
        let sizes = store.split.segments.segmentSizes()
        for segment in sizes.dropLast() {
            try store.splitter.mover.moveSegment(segment.number)
            #expect(!store.split.segments.segmentSizes().contains { $0.number == segment.number })
            try await expectEveryStream("after emptying segment \(segment.number)")
        }
        try await store.close()
        let reopened = try await EventStore.open(at: dir.path, configuration: configuration)
        for (stream, ids) in expected {
            #expect(try await reopened.read(stream: stream).collect().map(\.id) == ids, "reopened: \(stream)")
        }
        try await reopened.close()
        try AdminFixture.expectVerifiesClean(at: dir.path, "after the moves")
    }

    /// Cuts the last `bytes` bytes off the file at `path`, as a power cut during
    /// an unsynced append can leave it.
    private func tearEnd(of path: String, bytes: UInt64) throws {
        let size = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? UInt64)
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        try handle.truncate(atOffset: size - bytes)
        try handle.close()
    }
}
