import Foundation
import Synchronization
import SystemPackage
import Testing
@testable import Ringstore

/// The bucket files: appends chained per stream, reads from any floor,
/// generations, and what opening keeps after a cut.
@Suite struct StreamBucketsTests {
    func block(_ versions: Range<UInt64>, stream: UInt32) -> StreamBlock.RawBlock {
        SplitSegmentTests().block(versions, stream: stream) { 1000 * UInt64(stream) + $0 }
    }

    func versions(_ entries: [SplitSegment.Entry]) throws -> [UInt64] {
        try SplitSegmentTests().versions(entries)
    }

    func streamsFolder(_ dir: TemporaryDirectory) throws -> FilePath {
        let folder = FilePath(dir.path).appending("streams")
        try StorageDirectory.create(folder)
        return folder
    }

    /// Runs `work` on another thread and waits for it, from inside a hook that
    /// holds the thread reaching it: true if it finished. Only work that waits
    /// for the held thread's lock reaches the bound, which turns a deadlock
    /// into a failure rather than timing anything.
    static func finishes(_ work: @escaping @Sendable () -> Void) -> Bool {
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            work()
            done.signal()
        }
        return done.wait(timeout: .now() + 120) == .success
    }

    @Test func appendsChainPerStreamAndReopenRebuildsTheHeads() throws {
        let dir = TemporaryDirectory()
        let folder = try streamsFolder(dir)
        do {
            let buckets = try StreamBuckets(streams: folder, count: 4)
            #expect(!StorageDirectory.isDirectory(folder.appending("buckets")), "no folder until the first append")
            // Streams 1 and 5 share bucket 1; stream 2 has its own.
            for round in UInt64(0)..<5 {
                for stream: UInt32 in [1, 5, 2] {
                    let next = try buckets.append(stream: stream, blocks: [block((round * 3)..<(round * 3 + 3), stream: stream)],
                                                  compress: true) { nil }
                    #expect(next == round * 3 + 3)
                }
            }
            #expect(buckets.fileSizes().map(\.number) == [StreamBuckets.fileNumber(bucket: 1, generation: 0),
                                                          StreamBuckets.fileNumber(bucket: 2, generation: 0)])
            #expect(try versions(buckets.entries(of: 5, from: 0)) == Array(0..<15))
            #expect(try versions(buckets.entries(of: 1, from: 7, through: 9)) == Array(6..<12), "only the entries holding 7...9")
            #expect(buckets.head(of: 3) == nil && buckets.nextVersion(of: 3) == 0)
            try buckets.sync()
        }
        let reopened = try StreamBuckets(streams: folder, count: 4)
        for stream: UInt32 in [1, 5, 2] {
            #expect(reopened.head(of: stream)?.next == 15)
            #expect(reopened.head(of: stream)?.entries == 5)
            #expect(try versions(reopened.entries(of: stream, from: 0)) == Array(0..<15))
        }
        #expect(reopened.strayEntries.isEmpty)
        // Appends go on where the chains left off.
        try reopened.append(stream: 5, blocks: [block(15..<16, stream: 5)], compress: false) { nil }
        #expect(try versions(reopened.entries(of: 5, from: 14)) == [12, 13, 14, 15])
    }

    @Test func aMoveThatDoesNotContinueTheChainIsRefused() throws {
        let dir = TemporaryDirectory()
        let buckets = try StreamBuckets(streams: try streamsFolder(dir), count: 2)
        #expect(throws: RingstoreError.self) {
            try buckets.append(stream: 0, blocks: [block(1..<3, stream: 0)], compress: true) { nil }
        }
        try buckets.append(stream: 0, blocks: [block(0..<3, stream: 0)], compress: true) { nil }
        let error = #expect(throws: RingstoreError.self) {
            try buckets.append(stream: 0, blocks: [block(2..<4, stream: 0)], compress: true) { nil }
        }
        #expect(error?.message.contains("holds versions up to 3") == true)
        #expect(buckets.nextVersion(of: 0) == 3, "a refused move changes nothing")
    }

    @Test func aFullFileContinuesInTheNextGeneration() throws {
        let dir = TemporaryDirectory()
        let folder = try streamsFolder(dir)
        let buckets = try StreamBuckets(streams: folder, count: 1, fileLimit: 4096)
        let sample = Array("{\"stream\":3,\"version\":".utf8) + Array(repeating: UInt8(ascii: "7"), count: 1000)
        let dictionary = sample.withUnsafeBytes { CompressionDictionary($0) }
        for round in UInt64(0)..<40 {
            try buckets.append(stream: 3, blocks: [block((round * 4)..<(round * 4 + 4), stream: 3)], compress: true) { dictionary }
        }
        let generations = buckets.fileSizes().map { StreamBuckets.bucketAndGeneration(of: $0.number)!.generation }
        #expect(generations.count > 2 && generations == Array(0..<UInt32(generations.count)))
        #expect(buckets.fileSizes().allSatisfy { $0.bytes <= 4096 })
        #expect(try versions(buckets.entries(of: 3, from: 0)) == Array(0..<160))
        try buckets.sync()
        let reopened = try StreamBuckets(streams: folder, count: 1, fileLimit: 4096)
        #expect(try versions(reopened.entries(of: 3, from: 33)) == Array(32..<160))
    }

    /// A new file's creation sync holds no lock that reads or moves into other
    /// buckets' files take: both go on while it runs (before, a read of any
    /// bucketed stream waited for that device sync).
    @Test func aNewFilesSyncHoldsUpNeitherReadsNorMovesIntoOtherFiles() throws {
        let dir = TemporaryDirectory()
        let buckets = try StreamBuckets(streams: try streamsFolder(dir), count: 2)
        try buckets.append(stream: 1, blocks: [block(0..<3, stream: 1)], compress: false) { nil }
        let meanwhile = Mutex<(read: UInt64?, appended: UInt64?)?>(nil)
        let finishedDuringTheSync = Mutex(false)
        buckets.newFileSyncing.install {
            let finished = Self.finishes {
                let read = buckets.head(of: 1)?.next
                let appended = try? buckets.append(stream: 3, blocks: [self.block(0..<2, stream: 3)], compress: false) { nil }
                meanwhile.withLock { $0 = (read, appended) }
            }
            finishedDuringTheSync.withLock { $0 = finished }
        }
        defer { buckets.newFileSyncing.remove() }
        try buckets.append(stream: 0, blocks: [block(0..<2, stream: 0)], compress: false) { nil }
        let seen = meanwhile.withLock { $0 }
        #expect(finishedDuringTheSync.withLock { $0 }, "the read and the move finished while the sync ran")
        #expect(seen?.read == 3, "stream 1's head read during bucket 0's creation sync")
        #expect(seen?.appended == 2, "stream 3 moved into bucket 1's file during bucket 0's creation sync")
        #expect(try versions(buckets.entries(of: 0, from: 0)) == [0, 1])
        #expect(try versions(buckets.entries(of: 3, from: 0)) == [0, 1])
    }

    /// An entry's write holds only its bucket's lock: reads of bucketed streams
    /// and moves into other buckets go on while it runs (before, it ran under
    /// the lock they all take, and a compaction's lanes waited for each
    /// other's writes), and the stream itself reads as before the move until
    /// the write is done.
    @Test func anEntrysWriteHoldsUpNeitherReadsNorMovesIntoOtherBuckets() throws {
        let dir = TemporaryDirectory()
        let folder = try streamsFolder(dir)
        let buckets = try StreamBuckets(streams: folder, count: 2)
        try buckets.append(stream: 0, blocks: [block(0..<2, stream: 0)], compress: false) { nil }
        try buckets.append(stream: 1, blocks: [block(0..<3, stream: 1)], compress: false) { nil }
        let meanwhile = Mutex<(read: UInt64?, moving: [UInt64], appended: UInt64?)?>(nil)
        let finishedDuringTheWrite = Mutex(false)
        buckets.entryWriting.install {
            buckets.entryWriting.remove()  // only the first write waits
            let finished = Self.finishes {
                let read = buckets.head(of: 1)?.next
                let moving = (try? self.versions(buckets.entries(of: 0, from: 0))) ?? []
                let appended = try? buckets.append(stream: 3, blocks: [self.block(0..<2, stream: 3)], compress: false) { nil }
                meanwhile.withLock { $0 = (read, moving, appended) }
            }
            finishedDuringTheWrite.withLock { $0 = finished }
        }
        defer { buckets.entryWriting.remove() }
        try buckets.append(stream: 0, blocks: [block(2..<4, stream: 0)], compress: false) { nil }
        let seen = meanwhile.withLock { $0 }
        #expect(finishedDuringTheWrite.withLock { $0 }, "the reads and the move finished while the write ran")
        #expect(seen?.read == 3, "stream 1's head read during stream 0's write")
        #expect(seen?.moving == [0, 1], "stream 0 read as before its move while the move's write ran")
        #expect(seen?.appended == 2, "stream 3 moved into bucket 1's file during stream 0's write into bucket 0's")
        #expect(try versions(buckets.entries(of: 0, from: 0)) == [0, 1, 2, 3])
        #expect(try versions(buckets.entries(of: 3, from: 0)) == [0, 1])
        try buckets.sync()
        let reopened = try StreamBuckets(streams: folder, count: 2)
        #expect(reopened.strayEntries.isEmpty)
        #expect([0, 1, 3].map { reopened.nextVersion(of: $0) } == [4, 3, 2])
    }

    /// A compaction's buckets gather each bucket's entries and write them 256
    /// KiB at a time (here 16 KiB): reads meanwhile see every append (a read writes the
    /// bucket's gathered entries first), a file filling up writes what it
    /// gathered before the next generation starts, and after `sync()` the
    /// files reopen with every chain whole and nothing stray.
    @Test func combinedWritesReadBackAndReopenWhole() throws {
        let dir = TemporaryDirectory()
        let folder = try streamsFolder(dir)
        // Gathered writes of 16 KiB, files of 128 KiB: both ways of writing what was gathered are taken.
        let fileLimit: UInt64 = 128 << 10
        let buckets = try StreamBuckets(streams: folder, count: 2, fileLimit: fileLimit, syncsNewFiles: false, combinedWriteBytes: 16 << 10)
        var expected: [UInt32: UInt64] = [:]
        for round in UInt64(0)..<3 {
            for stream in UInt32(0)..<200 {
                let from = expected[stream, default: 0]
                let next = try buckets.append(stream: stream, blocks: [block(from..<(from + 12 + UInt64(stream % 5)), stream: stream)],
                                              compress: false) { nil }
                expected[stream] = next
            }
            // Read back while entries may still be gathered: each read writes its bucket's first.
            for stream: UInt32 in [0, 1, 77, 199] {
                #expect(try versions(buckets.entries(of: stream, from: 0)) == Array(0..<expected[stream]!), "round \(round), stream \(stream)")
            }
        }
        let generations = buckets.fileSizes().map { StreamBuckets.bucketAndGeneration(of: $0.number)!.generation }
        #expect(generations.max() ?? 0 >= 2, "the files filled up (what a generation gathered is written before the next begins)")
        try buckets.sync()
        let reopened = try StreamBuckets(streams: folder, count: 2, fileLimit: fileLimit)
        #expect(reopened.strayEntries.isEmpty)
        for stream in UInt32(0)..<200 {
            #expect(reopened.nextVersion(of: stream) == expected[stream])
        }
        #expect(try versions(reopened.entries(of: 123, from: 0)) == Array(0..<expected[123]!))
    }

    /// Moves into one bucket from many threads, its files filling up on the
    /// way: each generation is created once, and every chain stays whole.
    @Test func concurrentMovesIntoFullBucketsCreateEachGenerationOnce() throws {
        let dir = TemporaryDirectory()
        let folder = try streamsFolder(dir)
        let buckets = try StreamBuckets(streams: folder, count: 1, fileLimit: 2048)
        DispatchQueue.concurrentPerform(iterations: 8) { stream in
            for round in UInt64(0)..<20 {
                _ = try? buckets.append(stream: UInt32(stream), blocks: [block((round * 2)..<(round * 2 + 2), stream: UInt32(stream))],
                                        compress: false) { nil }
            }
        }
        let generations = buckets.fileSizes().map { StreamBuckets.bucketAndGeneration(of: $0.number)!.generation }
        #expect(generations.count > 2 && generations == Array(0..<UInt32(generations.count)))
        for stream in UInt32(0)..<8 {
            #expect(try versions(buckets.entries(of: stream, from: 0)) == Array(0..<40))
        }
        try buckets.sync()
        let reopened = try StreamBuckets(streams: folder, count: 1, fileLimit: 2048)
        #expect(reopened.strayEntries.isEmpty)
        for stream in UInt32(0)..<8 { #expect(reopened.nextVersion(of: stream) == 40) }
    }

    /// A cut before the mover's sync can leave a torn tail, or the entries of
    /// one write in part: opening keeps every chain as far as it continues
    /// whole from version 0 and cuts the torn bytes.
    @Test func openingKeepsWhatContinuesAndCutsATornTail() throws {
        let dir = TemporaryDirectory()
        let folder = try streamsFolder(dir)
        let path: FilePath
        var offsets: [UInt32: [UInt32]] = [:]  // entry offsets by stream
        do {
            let buckets = try StreamBuckets(streams: folder, count: 1)
            for round in UInt64(0)..<3 {
                for stream: UInt32 in [0, 1, 2] {
                    try buckets.append(stream: stream, blocks: [block((round * 2)..<(round * 2 + 2), stream: stream)],
                                       compress: false) { nil }
                    offsets[stream, default: []].append(buckets.head(of: stream)!.link.offset)
                }
            }
            try buckets.sync()
            path = folder.appending("buckets").appending(SplitSegment.fileName(of: StreamBuckets.fileNumber(bucket: 0, generation: 0)))
        }
        // Stream 1's second entry lost (zeros, as a page that never reached the disk),
        // and stream 2's last entry torn at the end of the file.
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path.string))
        try handle.seek(toOffset: UInt64(offsets[1]![1]))
        handle.write(Data(repeating: 0, count: 40))
        try handle.truncate(atOffset: UInt64(offsets[2]![2]) + 20)
        try handle.close()

        let reopened = try StreamBuckets(streams: folder, count: 1)
        #expect(reopened.nextVersion(of: 0) == 6, "untouched")
        #expect(reopened.nextVersion(of: 1) == 2, "up to the lost entry: the one after it is garbage")
        #expect(reopened.nextVersion(of: 2) == 4, "up to the torn one")
        #expect(try versions(reopened.entries(of: 1, from: 0)) == [0, 1])
        #expect(reopened.strayEntries.map(\.offset).contains(offsets[1]![2]), "stream 1's entry after the lost one is stray")
        #expect(reopened.fileSizes()[0].bytes == UInt64(offsets[2]![2]), "the torn tail is cut")
        // The mover writes the lost versions again, continuing each chain.
        try reopened.append(stream: 1, blocks: [block(2..<6, stream: 1)], compress: true) { nil }
        try reopened.append(stream: 2, blocks: [block(4..<6, stream: 2)], compress: true) { nil }
        try reopened.sync()
        let again = try StreamBuckets(streams: folder, count: 1)
        for stream: UInt32 in [0, 1, 2] {
            #expect(try versions(again.entries(of: stream, from: 0)) == Array(0..<6))
        }
    }

    @Test func aSyncPlanCoversWhatWasAppendedBeforeIt() throws {
        let dir = TemporaryDirectory()
        let buckets = try StreamBuckets(streams: try streamsFolder(dir), count: 2)
        #expect(buckets.pendingSync().isEmpty)
        try buckets.append(stream: 0, blocks: [block(0..<2, stream: 0)], compress: true) { nil }
        try buckets.append(stream: 1, blocks: [block(0..<2, stream: 1)], compress: true) { nil }
        let plan = buckets.pendingSync()
        #expect(plan.storageFiles.count == 2)
        try buckets.append(stream: 1, blocks: [block(2..<3, stream: 1)], compress: true) { nil }
        buckets.syncFailed(plan)
        #expect(buckets.pendingSync().storageFiles.count == 2, "a failed sync leaves both to sync")
        buckets.synced(buckets.pendingSync())
        #expect(buckets.pendingSync().isEmpty)
        try buckets.append(stream: 1, blocks: [block(3..<4, stream: 1)], compress: true) { nil }
        #expect(buckets.pendingSync().storageFiles.count == 1, "only the file appended to since")
    }
}

/// The bucket files' writeback, paced for all of them together.
@Suite struct BucketWritebackPaceTests {
    @Test func eachFileStartsPerChunkAndAppendsWaitPastTheAllowanceOverAll() throws {
        let dir = TemporaryDirectory()
        let folder = FilePath(dir.path)
        let files = try (0..<3).map { try SplitSegment.create(number: StreamBuckets.fileNumber(bucket: $0, generation: 0), in: folder) }
        var pace = BucketWritebackPace()
        let piece = [UInt8](repeating: 7, count: 48 << 10)
        func append(to index: Int) throws {
            _ = try files[index].append(piece, startingWriteback: false)
            pace.appended(UInt64(piece.count), to: files[index])
        }
        // 48 KiB in each file: under a file's chunk (64 KiB), nothing started.
        for index in 0..<3 { try append(to: index) }
        #expect(pace.takeUnfinished().isEmpty)
        // 96 KiB in each: each file's range started, 288 KiB in all, within the allowance.
        for index in 0..<3 { try append(to: index) }
        #expect(pace.takeUnfinished().isEmpty)
        // Two ranges more per file: 864 KiB started, so the oldest are to be waited
        // for, until no more than 512 KiB would be left on their way.
        for _ in 0..<2 { for index in 0..<3 { try append(to: index); try append(to: index) } }
        let unfinished = pace.takeUnfinished()
        #expect(unfinished.map(\.range.count) == Array(repeating: 96 << 10, count: 4))
        #expect(unfinished.prefix(3).map(\.file.number) == files.map(\.number), "oldest first")
        #expect(unfinished[0].range.lowerBound == files[0].entriesStart)
        #expect(pace.takeUnfinished().isEmpty, "each range is handed out once")
        // What is pending below a chunk is started by a drain, the largest first.
        _ = try files[0].append([UInt8](repeating: 1, count: 16 << 10), startingWriteback: false)
        pace.appended(16 << 10, to: files[0])
        _ = try files[1].append([UInt8](repeating: 1, count: 32 << 10), startingWriteback: false)
        pace.appended(32 << 10, to: files[1])
        #expect(pace.startLargestPending() && pace.startLargestPending() && !pace.startLargestPending())
    }
}
