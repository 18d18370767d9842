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
        var dirty = NumberedStreams()
        /// Streams whose records were written (to their files or the segments)
        /// since the last checkpoint: the checkpoint releases their ring entries.
        var touched = NumberedStreams()
        /// Streams a reader had written ahead of the scan, with the position of the
        /// last record written: their readers' "ahead" entries must outlive any
        /// checkpoint that does not yet publish that far.
        var servedBeyondScan: [String: UInt64] = [:]
        /// Streams the scan finds by their records' name bytes (see ``StreamNameCache``).
        var names = StreamNameCache()
        /// The scan's lists, kept for the next round (see ``ScanLists``).
        var lists = ScanLists()
        /// The ring pages the scan has read and not yet let go of.
        var mappedPages: SplitterMappedPages

        init(scanned: UInt64) {
            self.scanned = scanned
            mappedPages = SplitterMappedPages(releasedTo: scanned)
        }
    }

    /// What one scan round lists: its records, and the runs of one stream they
    /// form (each run's name, its catalog number if `Pending.names` knew it, and
    /// where it ends in `records`).
    ///
    /// Kept from round to round, emptied, so that their storage is reused: made
    /// afresh each round, they grew from empty by doubling, and a round of a few
    /// records (one flush's worth on a busy store) reallocated about a third of a
    /// time per event. Storage past `keptCapacity` entries is let go rather than
    /// held between rounds.
    struct ScanLists {
        var records: [(position: UInt64, version: UInt64, size: Int)] = []
        var runNames: [String] = []
        var runNumbers: [UInt32?] = []
        var runEnds: [Int] = []

        static let keptCapacity = 4096

        mutating func empty() {
            let keep = records.capacity <= Self.keptCapacity
            records.removeAll(keepingCapacity: keep)
            runNames.removeAll(keepingCapacity: keep)
            runNumbers.removeAll(keepingCapacity: keep)
            runEnds.removeAll(keepingCapacity: keep)
        }
    }
}
