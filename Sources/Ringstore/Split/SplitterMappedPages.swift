/// The part of the ring that the splitter's own reading may keep mapped, let go
/// of as the splitter leaves it behind.
///
/// Why: reading a record through the ring's mapping maps its page, and the
/// kernel maps the cached pages around it too (a whole large folio), and every
/// mapped page counts in the process's resident memory until it is released.
/// The scan reads every record once and the checkpoint's writing reads each
/// pending one again, so without this the scanned but unwritten part of the
/// ring stayed mapped until the checkpoint: with 100 events per append that was
/// 26-48 MiB of the peak resident set. Released pages stay in the page cache;
/// a later read (the checkpoint's, a reader's) maps them again with one minor
/// fault per cached folio, so releasing early costs a few hundred faults per
/// checkpoint, not one per record.
///
/// Advice only: releasing a page that is read again later is never wrong, only
/// a fault more.
struct SplitterMappedPages {
    /// Pages wholly before it have been released (or were never mapped by the
    /// splitter since the last release).
    private(set) var releasedTo: UInt64

    /// Pages are released in runs of at least this much: one `madvise` (and
    /// its TLB flush across the processors) per run.
    static let step: UInt64 = 1 << 20

    init(releasedTo: UInt64) {
        self.releasedTo = releasedTo / Self.pageSize * Self.pageSize
    }

    private static let pageSize: UInt64 = 4096

    /// Releases the pages before `position` (the page holding it stays mapped)
    /// once they make a run of at least ``step``.
    mutating func release(before position: UInt64, in ring: RingFile) {
        guard position >= releasedTo + Self.step else { return }
        let to = position / Self.pageSize * Self.pageSize
        ring.releasePages(from: releasedTo, to: to)
        releasedTo = to
    }

    /// Records that the pages before `position` have been released by someone
    /// else (the checkpoint's release of the split part of the ring).
    mutating func released(before position: UInt64) {
        releasedTo = max(releasedTo, position / Self.pageSize * Self.pageSize)
    }
}
