/// What the verifier learnt about the whole store: inputs for `stats` and the compaction summary.
package struct StoreInventory: Sendable {
    package var capacity: UInt64 = 0
    package var checkpoint: UInt64 = 0
    package var journalEnd: UInt64 = 0
    package var epoch: UInt32 = 0
    package var headerSequence: UInt64 = 0
    package var closedCleanly = false
    package var journalRecordsAfterCheckpoint = 0
    package var journalHistoryRecords = 0
    package var journalBytes: UInt64 = 0
    package var catalogNames = 0
    package var catalogBytes: UInt64 = 0
    package var globalIndexEntries = 0
    package var globalIndexBytes: UInt64 = 0
    package var streamFiles = 0
    package var streamFileBytes: UInt64 = 0
    package var indexFiles = 0
    package var indexFileBytes: UInt64 = 0
    package var blocks = 0
    package var events = 0
    package var rawBytes: UInt64 = 0
    package var storedBytes: UInt64 = 0
    /// Of ``rawBytes`` and ``storedBytes``, the stream files' blocks; the events they hold.
    package var fileRawBytes: UInt64 = 0
    package var fileStoredBytes: UInt64 = 0
    package var fileEvents = 0
    package var segments = 0
    package var segmentBytes: UInt64 = 0
    package var segmentEntries = 0
    /// The finished segments' summaries (``SegmentSummary``): files and bytes.
    package var segmentSummaries = 0
    package var segmentSummaryBytes: UInt64 = 0
    /// The bucket files (``StreamBuckets``): their count and bytes, the entries on
    /// streams' chains that hold versions past the streams' files, and the events
    /// those add.
    package var bucketFiles = 0
    package var bucketFileBytes: UInt64 = 0
    /// The bucket heads' snapshot (``BucketHeadsSnapshot``), if any.
    package var bucketSnapshotBytes: UInt64 = 0
    package var bucketEntries = 0
    package var bucketEvents = 0
    /// Bytes of bucket files no read needs: entries on no chain (what a write cut by a crash
    /// left), damaged stretches, and chains that a stream's own file outreaches (a promoted
    /// stream's): what a compaction drops.
    package var bucketGarbageEntries = 0
    package var bucketGarbageBytes: UInt64 = 0
    /// Per stream with stored events, by catalog number: name, events, blocks (file
    /// blocks, bucket and segment entries), bytes (file, index, bucket and segment entries).
    package var streams: [(name: String, events: Int, blocks: Int, bytes: UInt64)] = []
    /// Per catalog number: the bytes of the stream's split-segment entries (what a
    /// compaction collects from the segments for it).
    package var segmentBytesByNumber: [UInt64] = []
    /// Per catalog number: the stream's file as verification read it (nil: none), so
    /// that a compaction need not look any stream's file up again (see ``VerifiedStreamFile``).
    package var fileByNumber: [VerifiedStreamFile?] = []
    /// Per catalog number: whether the stream has a stream file.
    package var hasFileByNumber: [Bool] { fileByNumber.map { $0 != nil } }

    /// Bytes of everything compaction can rewrite (stream, index, bucket and segment files and summaries, the global index).
    package var rewritableBytes: UInt64 { streamFileBytes + indexFileBytes + bucketFileBytes + bucketSnapshotBytes + segmentBytes + segmentSummaryBytes + globalIndexBytes }
    /// Every file of the store.
    package var totalBytes: UInt64 { rewritableBytes + journalBytes + catalogBytes }
}

/// One stream file as verification read it: where it is and where it ends.
/// A compaction of a store that verified clean reads it from here instead of
/// looking the stream up in the store's folders (a `stat` per collision slot,
/// then an `open` of the file to learn its end, then another to read it).
package struct VerifiedStreamFile: Sendable, Equatable {
    /// The file's path relative to the store folder (`streams/xx/…`).
    package var relative: String
    /// The version after the file's last block (its first block's version plus its events).
    package var nextVersion: UInt64
    /// The file's size in bytes.
    package var bytes: UInt64
}
