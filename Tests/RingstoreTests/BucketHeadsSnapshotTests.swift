import Foundation
import SystemPackage
import Testing
@testable import Ringstore

/// The bucket heads' snapshot (``BucketHeadsSnapshot``): its codec, opening
/// from it, and when it is not written or not trusted.
@Suite struct BucketHeadsSnapshotTests {
    let helper = StreamBucketsTests()

    /// Appends `rounds` rounds of one to three versions to each of `streams`, from what each holds.
    func append(_ buckets: StreamBuckets, rounds: Int, streams: [UInt32]) throws {
        for _ in 0..<rounds {
            for stream in streams {
                let first = buckets.nextVersion(of: stream)
                let count = UInt64(1 + (first + UInt64(stream)) % 3)
                try buckets.append(stream: stream, blocks: [helper.block(first..<(first + count), stream: stream)], compress: true) { nil }
            }
        }
    }

    func heads(_ buckets: StreamBuckets, through last: UInt32) -> [StreamBuckets.Head?] {
        (0...last).map { buckets.head(of: $0) }
    }

    @Test func aSnapshotRoundTripsAndEveryFlippedByteIsRefused() {
        var heads = Array(repeating: StreamBuckets.Head.empty, count: 300)
        heads[2] = StreamBuckets.Head(link: .init(segment: StreamBuckets.numberBase | 2, offset: 4000), next: 17, rawBytes: 900, entries: 3)
        heads[299] = StreamBuckets.Head(link: .init(segment: StreamBuckets.numberBase | 1 << 8 | 3, offset: 70), next: 1 << 40,
                                        rawBytes: .max, entries: 1)
        let snapshot = BucketHeadsSnapshot(files: [.init(number: StreamBuckets.numberBase | 2, end: 5000),
                                                   .init(number: StreamBuckets.numberBase | 1 << 8 | 3, end: 100)], heads: heads)
        let bytes = snapshot.encoded()
        #expect(BucketHeadsSnapshot.decode(bytes) == snapshot)
        #expect(BucketHeadsSnapshot.decode(Array(bytes.dropLast())) == nil)
        for offset in bytes.indices {
            var damaged = bytes
            damaged[offset] ^= 0x10
            #expect(BucketHeadsSnapshot.decode(damaged) == nil, "flipped at \(offset)")
        }
    }

    /// Opened from a snapshot and the entries appended after it, the heads are
    /// the ones a walk of the whole files finds; reads and appends go on.
    @Test func openingFromASnapshotGivesTheHeadsAWalkGives() throws {
        let dir = TemporaryDirectory()
        let folder = try helper.streamsFolder(dir)
        let streams: [UInt32] = Array(0..<12)
        let written: [StreamBuckets.Head?]
        do {
            let buckets = try StreamBuckets(streams: folder, count: 4, fileLimit: 6000, snapshotGrowth: 1)
            try append(buckets, rounds: 8, streams: streams)
            #expect(!buckets.writeSnapshotIfGrown(), "not while appended bytes are unsynced")
            try buckets.sync()
            #expect(buckets.writeSnapshotIfGrown())
            #expect(!buckets.writeSnapshotIfGrown(), "not again before the files grow")
            try append(buckets, rounds: 8, streams: streams)  // after the snapshot, new generations among them
            try buckets.sync()
            written = heads(buckets, through: 12)
        }
        let opened = try StreamBuckets(streams: folder, count: 4, fileLimit: 6000)
        #expect(opened.filesOpenedFromSnapshot > 0)
        #expect(opened.fileSizes().count > opened.filesOpenedFromSnapshot, "files created after the snapshot are walked whole")
        #expect(heads(opened, through: 12) == written)
        for stream in streams {
            #expect(try helper.versions(opened.entries(of: stream, from: 0)) == Array(0..<opened.nextVersion(of: stream)))
        }
        try append(opened, rounds: 1, streams: [5])
        // Without it, the whole walk agrees.
        try FileManager.default.removeItem(atPath: folder.appending("buckets/heads").string)
        let walked = try StreamBuckets(streams: folder, count: 4, fileLimit: 6000)
        #expect(walked.filesOpenedFromSnapshot == 0)
        #expect(heads(walked, through: 12) == heads(opened, through: 12))
    }

    /// A snapshot naming a file shorter than it says (or missing), or damaged,
    /// is not taken: the files are walked whole. A promoted stream's forgotten
    /// chain stays forgotten in a snapshot; a failed sync stops snapshots.
    @Test func aSnapshotIsRefusedWhereItCannotHoldAndAFailedSyncStopsThem() throws {
        let dir = TemporaryDirectory()
        let folder = try helper.streamsFolder(dir)
        let streams: [UInt32] = Array(0..<6)
        do {
            let buckets = try StreamBuckets(streams: folder, count: 2, snapshotGrowth: 1)
            try append(buckets, rounds: 5, streams: streams)
            buckets.forget(stream: 3)  // promoted: its own file holds its history now
            try buckets.sync()
            #expect(buckets.writeSnapshotIfGrown())
        }
        let fromSnapshot = try StreamBuckets(streams: folder, count: 2)
        #expect(fromSnapshot.filesOpenedFromSnapshot == 2)
        #expect(fromSnapshot.head(of: 3) == nil, "the forgotten chain stays forgotten")
        #expect(fromSnapshot.head(of: 2) != nil)
        let snapshotPath = folder.appending("buckets/heads").string
        let good = try Data(contentsOf: URL(fileURLWithPath: snapshotPath))
        // A file shorter than the snapshot says: walked whole (the chain of stream 3 comes back).
        let file = folder.appending("buckets").appending(SplitSegment.fileName(of: StreamBuckets.fileNumber(bucket: 1, generation: 0))).string
        let size = try #require(try FileManager.default.attributesOfItem(atPath: file)[.size] as? UInt64)
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: file))
        try handle.truncate(atOffset: size - 1)
        try handle.close()
        let cut = try StreamBuckets(streams: folder, count: 2)
        #expect(cut.filesOpenedFromSnapshot == 0)
        // Damaged: walked whole.
        var damaged = good
        damaged[20] ^= 0x10
        try damaged.write(to: URL(fileURLWithPath: snapshotPath))
        let refused = try StreamBuckets(streams: folder, count: 2, snapshotGrowth: 1)
        #expect(refused.filesOpenedFromSnapshot == 0)
        // A failed sync: no snapshot again.
        try append(refused, rounds: 1, streams: streams)
        refused.syncFailed(refused.pendingSync())
        try refused.sync()
        #expect(!refused.writeSnapshotIfGrown())
    }

    /// `verify` names a damaged snapshot; `stats` counts its bytes.
    @Test func verifyNamesADamagedSnapshot() async throws {
        let dir = TemporaryDirectory()
        let path = dir.child("store")
        try await AdminBucketTests.build(at: path)
        let snapshot = path + "/streams/buckets/" + BucketHeadsSnapshot.fileName
        #expect(FileManager.default.fileExists(atPath: snapshot), "the mover wrote one")
        var report = try AdminBucketTests.verify(path)
        #expect(report.problems.filter { !$0.harmless }.isEmpty, "\(report.problems)")
        #expect(report.inventory.bucketSnapshotBytes > 0 && report.inventory.bucketSnapshotBytes == fileSize(FilePath(snapshot)))
        try AdminFixture.flip(snapshot, at: 30)
        report = try AdminBucketTests.verify(path)
        let found = report.problems.filter { $0.file.hasSuffix("buckets/" + BucketHeadsSnapshot.fileName) }
        #expect(found.count == 1 && found.first?.harmless == false, "\(report.problems)")
        // The store still opens (walking the bucket files whole) with every stream readable.
        let store = try await EventStore.open(at: path, configuration: AdminBucketTests.configuration)
        let events = try await store.readAll(from: .start, direction: .forwards, maxCount: .max).reduce(0) { n, _ in n + 1 }
        #expect(events > 6_000)
        try await store.close()
    }
}
