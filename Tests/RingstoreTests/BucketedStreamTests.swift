import Foundation
import SystemPackage
import Testing
@testable import Ringstore

/// Streams whose moved history is in a bucket file: reads across the bucket
/// chain and the segments, promotion into a file of their own (also after an
/// interrupted one), and the store moving small streams into buckets.
@Suite struct BucketedStreamTests {
    struct Fixture {
        let dir = TemporaryDirectory("BucketedStreamTests")
        let store: SplitStore

        init(segmentBytes: UInt64 = 64 << 20) throws {
            let root = FilePath(dir.path)
            let directory = try StreamDirectory(root: root, maxOpenFiles: 64, blockCacheBytes: 0)
            store = try SplitStore(directory: directory, segments: try SplitSegments(root: root, checkpoint: 0, segmentBytes: segmentBytes),
                                   movesIntoBuckets: true, catalog: try StreamCatalog(directory: root), compress: true)
        }

        /// The same store's files opened again (as the next open would find them).
        func reopened() throws -> SplitStore {
            let root = FilePath(dir.path)
            return try SplitStore(directory: try StreamDirectory(root: root, maxOpenFiles: 64, blockCacheBytes: 0),
                                  segments: try SplitSegments(root: root, checkpoint: 0), movesIntoBuckets: true,
                                  catalog: try StreamCatalog(directory: root), compress: true)
        }
    }

    /// `versions` of `stream`, each event's payload naming it, `padding` bytes more each.
    func block(_ stream: String, _ versions: Range<UInt64>, padding: Int = 0) -> StreamBlock.RawBlock {
        var block = StreamBlock.RawBlock()
        for v in versions {
            let data = Array("{\"stream\":\"\(stream)\",\"version\":\(v),\"pad\":\"\(String(repeating: "x", count: padding))\"}".utf8)
            data.withUnsafeBytes { d in
                Array("Type".utf8).withUnsafeBytes { type in
                    block.add(version: v, position: 1000 * v, id: UUID().uuid, timestampNanoseconds: Int64(v), json: true,
                              type: type, metadata: UnsafeRawBufferPointer(start: nil, count: 0), data: d)
                }
            }
        }
        return block
    }

    func versions(_ store: SplitStore, _ stream: String, from: UInt64 = 0, _ direction: ReadDirection = .forwards,
                  max: Int = 10_000) throws -> [UInt64] {
        try store.read(stream: stream, from: from, direction: direction, maxCount: max).map { event in
            #expect(String(decoding: event.data, as: UTF8.self).hasPrefix("{\"stream\":\"\(stream)\",\"version\":\(event.version),"))
            return event.version
        }
    }

    /// Stream "s" with versions 0..<10 moved into its bucket (the segments forget them).
    func bucketedStream(_ f: Fixture) throws -> UInt32 {
        let s = f.store.catalog.register("s")
        try f.store.appendToSegments([.init(number: s, blocks: [block("s", 0..<10)])])
        #expect(try f.store.move(stream: "s", number: s) == .bucket)
        f.store.segments.forgetMoved([s])
        return s
    }

    /// Appends to stream `s`'s segment chain from version `first` until it holds
    /// ``SplitStore/promotedBytes`` (about 1.2 MiB), so that its next move is a
    /// promotion; returns the version after the last.
    func growPastPromotion(_ f: Fixture, _ s: UInt32, from first: UInt64) throws -> UInt64 {
        var next = first
        while UInt64(f.store.segments.head(of: s)?.rawBytes ?? 0) < SplitStore.promotedBytes {
            try f.store.appendToSegments([.init(number: s, blocks: [block("s", next..<(next + 16), padding: 2000)])])
            next += 16
        }
        return next
    }

    @Test func aSmallStreamMovesIntoItsBucketAndReadsAcrossBucketAndSegments() throws {
        let f = try Fixture()
        let s = f.store.catalog.register("s")
        for round in UInt64(0)..<5 {
            try f.store.appendToSegments([.init(number: s, blocks: [block("s", (round * 2)..<(round * 2 + 2))])])
        }
        let ids = try f.store.read(stream: "s", from: 0, direction: .forwards, maxCount: 100).map(\.id)
        #expect(try f.store.move(stream: "s", number: s) == .bucket)
        f.store.segments.forgetMoved([s])
        #expect(f.store.segments.head(of: s) == nil)
        #expect(f.store.buckets.nextVersion(of: s) == 10)
        #expect(try f.store.fileNextVersion(of: "s") == 0, "no file of its own")
        #expect(try f.store.movedNextVersion(of: "s") == 10)
        #expect(try f.store.read(stream: "s", from: 0, direction: .forwards, maxCount: 100).map(\.id) == ids)
        // New records go to the segments, never into a file that would start past its history.
        #expect(!f.store.takesDirectWrites(s))
        #expect(throws: RingstoreError.self) { try f.store.writeToFile(stream: "s", number: s, blocks: [block("s", 10..<11)]) }
        try f.store.appendToSegments([.init(number: s, blocks: [block("s", 10..<13)])])
        #expect(try f.store.nextVersion(of: "s") == 13)
        #expect(try versions(f.store, "s") == Array(0..<13))
        #expect(try versions(f.store, "s", from: 8, max: 4) == [8, 9, 10, 11])
        #expect(try versions(f.store, "s", from: 100, .backwards, max: 5) == [12, 11, 10, 9, 8])
        #expect(try versions(f.store, "s", from: 9, .backwards) == Array((0...9).reversed()))
        let inBucket = try #require(try f.store.decodedBlock(of: "s", number: s, containing: 3))
        #expect(inBucket.versions.contains(3) && inBucket.link == nil)
        let inSegments = try #require(try f.store.decodedBlock(of: "s", number: s, containing: 11))
        #expect(inSegments.versions == 10..<13 && inSegments.link != nil)
        // The next move continues the chain, and a reopen finds it.
        #expect(try f.store.move(stream: "s", number: s) == .bucket)
        #expect(f.store.buckets.head(of: s)?.entries == 2)
        try f.store.buckets.sync()
        f.store.segments.forgetMoved([s])
        let reopened = try f.reopened()
        #expect(reopened.buckets.nextVersion(of: s) == 13)
        #expect(try versions(reopened, "s") == Array(0..<13))
    }

    @Test func aStreamWhoseHistoryPassesTheLimitLeavesItsBucketForAFile() throws {
        let f = try Fixture()
        let s = try bucketedStream(f)
        let next = try growPastPromotion(f, s, from: 10)
        #expect(try f.store.move(stream: "s", number: s) == .file)
        #expect(try f.store.fileNextVersion(of: "s") == next, "the file holds the bucket chain and the segments' entries")
        #expect(f.store.buckets.head(of: s) == nil, "the chain is forgotten")
        #expect(try versions(f.store, "s") == Array(0..<next))
        try f.store.buckets.sync()
        try f.store.directory.syncAll(dirty: ["s"])
        f.store.segments.forgetMoved([s])
        #expect(f.store.takesDirectWrites(s))
        // Reopened, the chain is found again as garbage: the file reaches further, and reads take it.
        let reopened = try f.reopened()
        #expect(reopened.buckets.nextVersion(of: s) == 10)
        #expect(try reopened.movedNextVersion(of: "s") == next)
        #expect(try versions(reopened, "s", from: 5, max: 10) == Array(5..<15))
    }

    /// A crash part-way through a promotion leaves a file holding a prefix of
    /// the history: reads take the bucket chain, which reaches further, and the
    /// next move completes the file from where it ends.
    @Test func anInterruptedPromotionIsCompletedByTheNextMove() throws {
        let f = try Fixture()
        let s = try bucketedStream(f)
        let bucketIDs = try f.store.read(stream: "s", from: 0, direction: .forwards, maxCount: 100).map(\.id)
        // What an interrupted promotion left: the file's first four versions (the same events).
        let prefix = try f.store.read(stream: "s", from: 0, direction: .forwards, maxCount: 4)
        var builder = StreamBlock.Builder(limit: .max)
        for event in prefix { builder.add(event) }
        let handle = try #require(try f.store.directory.handle(for: "s", number: s, create: true))
        try handle.withFile { try $0.append(blocks: builder.finish(), compress: true) }
        #expect(try f.store.fileNextVersion(of: "s") == 4)
        #expect(try f.store.movedNextVersion(of: "s") == 10)
        #expect(try f.store.read(stream: "s", from: 0, direction: .forwards, maxCount: 100).map(\.id) == bucketIDs)
        #expect(try f.store.read(stream: "s", from: 7, direction: .backwards, maxCount: 100).map(\.id) == bucketIDs[0...7].reversed())
        // The next move is a promotion: the file continues from version 4.
        let next = try growPastPromotion(f, s, from: 10)
        #expect(try f.store.move(stream: "s", number: s) == .file)
        #expect(try f.store.fileNextVersion(of: "s") == next)
        #expect(try f.store.read(stream: "s", from: 0, direction: .forwards, maxCount: 10).map(\.id) == bucketIDs)
        #expect(try versions(f.store, "s") == Array(0..<next))
    }

    /// Through the public API: with buckets on, the mover empties segments of
    /// many small streams into bucket files and creates no stream file; every
    /// event reads back, before and after a reopen (with buckets off then: a
    /// store that has bucket files reads them), and the offline tool verifies it clean.
    @Test func theMoverPutsSmallStreamsIntoBuckets() async throws {
        let dir = TemporaryDirectory()
        var configuration = Configuration.testing(capacity: 256 << 10)
        configuration.splitSegmentBudget = 256 << 10
        configuration.journalFullWait = .seconds(60)
        configuration.streamBuckets = true
        let store = try await EventStore.open(at: dir.path, configuration: configuration)
        var expected: [String: [UUID]] = [:]
        for i in 0..<6_000 {
            let stream = "s-\(i % 200)"
            let e = EventData(type: "Test", data: Array("{\"event\": \(i), \"pad\": \"\((0..<3).map { _ in UUID().uuidString }.joined())\"}".utf8))
            try await store.append(to: stream, events: [e])
            expected[stream, default: []].append(e.id)
        }
        try await store.flush()
        try await waitUntil("the mover to empty a segment") { store.splitter.mover.segmentsDeleted.load(ordering: .relaxed) > 0 }
        #expect(store.split.buckets.totalBytes > 0)
        for (stream, ids) in expected {
            #expect(try await store.read(stream: stream).collect().map(\.id) == ids, "\(stream)")
        }
        try await store.close()
        let streamFiles = try FileManager.default.subpathsOfDirectory(atPath: dir.path + "/streams").filter { $0.hasSuffix(".stream") }
        #expect(streamFiles.isEmpty, "small streams get no file of their own: \(streamFiles.prefix(3))")
        configuration.streamBuckets = false
        let reopened = try await EventStore.open(at: dir.path, configuration: configuration)
        for (stream, ids) in expected {
            #expect(try await reopened.read(stream: stream).collect().map(\.id) == ids, "\(stream)")
        }
        #expect(try await reopened.readAll().collect().count == 6_000)
        try await reopened.close()
        try AdminFixture.expectVerifiesClean(at: dir.path, "a store with bucket files")
    }
}
