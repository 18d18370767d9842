/// The journal's cursors and the store's counters at one moment.
///
/// Cursors are logical journal positions and satisfy
/// `checkpoint ≤ split ≤ written ≤ reserved` and `checkpoint ≤ durable ≤ written`
/// (in durable mode also `split ≤ durable`).
public struct StoreStats: Sendable, Hashable {
    /// End of the space handed to appends (some may still be being copied).
    public var reservedPosition: UInt64
    /// End of the records written to the journal file.
    public var writtenPosition: UInt64
    /// End of the records flushed to stable storage.
    public var durablePosition: UInt64
    /// End of the records copied into stream files (readers read up to here).
    public var splitPosition: UInt64
    /// Records before this are in durable stream files; their ring space may be reused.
    public var checkpointPosition: UInt64
    /// The ring's size in bytes.
    public var journalCapacity: UInt64
    /// Streams known to the store.
    public var streamCount: Int
    /// Events whose records are still in the ring.
    public var eventsInJournal: Int
    /// Appends acknowledged since the store was opened.
    public var appendsAcknowledged: UInt64
    /// Events acknowledged since the store was opened.
    public var eventsAcknowledged: UInt64
    /// Journal flushes (`fdatasync`) since the store was opened.
    public var flushes: UInt64
    /// Events copied into stream files since the store was opened.
    public var eventsSplit: UInt64
    /// Checkpoints written since the store was opened.
    public var checkpoints: UInt64
    /// Stream files open now.
    public var openStreamFiles: Int
    /// Appends that found the journal full and waited for ring space (backpressure),
    /// since the store was opened.
    public var appendsWaitedForSpace: UInt64
    /// Stream reads that had to wait for the splitter, since the store was opened.
    public var readerWaits: Int
    /// 99th percentile of those waits, in milliseconds (0 if none).
    public var readerWaitP99Milliseconds: Double
    /// Stream reads answered from the decoded-block cache without touching a
    /// file, since the store was opened (see `Configuration.blockCacheBytes`).
    public var blockCacheHits: UInt64
    /// Stream reads that had to read and decode a block from a file.
    public var blockCacheMisses: UInt64
    /// Memory held by the decoded-block cache now, approximately, in bytes.
    public var blockCacheBytes: Int
    /// The longest checkpoint since the store was opened (or a benchmark's
    /// measured run began), in milliseconds: from
    /// handing it over (stream files written) to the journal header write, which
    /// frees the ring space. Longer than the ring's headroom at the ingest rate
    /// means appends wait.
    public var checkpointMaxMilliseconds: Double
    /// Bytes in the split segments now: small streams' entries that the segment
    /// mover has yet to move into their stream files (see `Configuration.splitSegmentBudget`).
    public var splitSegmentBytes: UInt64
    /// Times checkpoints waited for the segment mover because the segments were
    /// past their limit (three times `Configuration.splitSegmentBudget`), since
    /// the store was opened; appends then wait for ring space.
    public var splitSegmentHolds: UInt64
    /// Bytes in the bucket files: small streams' moved history, when the store
    /// keeps them in shared files (`Configuration.streamBuckets`; 0 otherwise).
    public var bucketFileBytes: UInt64
    /// Events recovery found in the journal at open.
    public var recoveredEvents: Int
    /// Why recovery stopped scanning at open.
    public var recoveryStopReason: String

    /// Bytes of the ring in use (not yet reusable).
    public var journalBytesInUse: UInt64 { reservedPosition - checkpointPosition }
    /// Bytes acknowledged but not yet copied into stream files.
    public var splitLag: UInt64 { durablePosition > splitPosition ? durablePosition - splitPosition : 0 }
}
