extension Splitter {
    /// Records scanned but not yet written to their stream files, by stream.
    ///
    /// Why defer: a split round covers whatever became durable since the last
    /// one, often a few kilobytes, so writing each round at once gave streams
    /// blocks of one or two events: poor compression, many index entries, and
    /// one block to decode per event when reading `$all`. Holding a stream's
    /// records (as ring positions: the records stay in the ring until the
    /// checkpoint passes them) until the checkpoint, or until the stream has a
    /// good block's worth, gives blocks that span a whole checkpoint interval.
    struct Pending {
        /// Records before it have been scanned: each is in its stream file or in `streams`.
        var scanned: UInt64
        var streams = PendingStreams()
        /// Stream files written since the last checkpoint (the checkpoint syncs them).
        var dirty = Set<String>()
        /// Streams whose records were written (to their files or the segments)
        /// since the last checkpoint: the checkpoint releases their ring entries.
        var touched = Set<String>()
        /// Streams a reader had written ahead of the scan, with the position of the
        /// last record written: their readers' "ahead" entries must outlive any
        /// checkpoint that does not yet publish that far.
        var servedBeyondScan: [String: UInt64] = [:]
    }
}
