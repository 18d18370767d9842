/// Keeps the bucket files' writes at the device's pace, all buckets together:
/// their writeback is started once ``SequentialWriteback/chunkBytes`` were
/// appended to any of them, and an append waits while more than
/// ``SequentialWriteback/inFlightBytes`` started are still on their way.
///
/// Why all together: a bucket file is a ``SplitSegment``, whose own writeback
/// paces one file; the mover appends to 64 of them, so each file's allowance
/// added up to 64 times over. While checkpoints waited for the mover on the
/// SD-card profile, moving 10,000 streams' whole chains put about 300 MB into
/// the card's queue within seconds and journal syncs waited up to 2.1 s behind
/// it (the same moves into a file per stream were bound by the card's writes
/// a second instead, and slower). With one allowance for all, at most about
/// 20 ms of the card's time is queued in front of a journal flush.
///
/// A value kept under ``StreamBuckets``' lock; waits happen outside it.
struct BucketWritebackPace: Sendable {
    /// Appended and not yet handed to the device, by file number: the file and where the range begins.
    private var unstarted: [UInt32: (file: SplitSegment, from: UInt64)] = [:]
    private var unstartedBytes: UInt64 = 0
    /// Started and not yet waited for, oldest first.
    private var started: [(file: SplitSegment, range: Range<UInt64>)] = []
    private var startedBytes: UInt64 = 0

    /// Notes `count` bytes appended to `file`, which now ends at `file.end`;
    /// once a chunk is pending in all, starts the writeback of every file's
    /// pending range.
    mutating func appended(_ count: UInt64, to file: SplitSegment) {
        if unstarted[file.number] == nil { unstarted[file.number] = (file, file.end - count) }
        unstartedBytes += count
        guard unstartedBytes >= SequentialWriteback.chunkBytes else { return }
        for (_, pending) in unstarted.sorted(by: { $0.key < $1.key }) {
            let range = pending.from..<pending.file.end
            guard !range.isEmpty else { continue }
            pending.file.file.startWriteback(from: range.lowerBound, count: UInt64(range.count))
            started.append((pending.file, range))
            startedBytes += UInt64(range.count)
        }
        unstarted.removeAll(keepingCapacity: true)
        unstartedBytes = 0
    }

    /// The oldest started ranges to wait for before the next append, taken off
    /// the list (the caller waits outside the lock), if more than the allowance
    /// would be on its way otherwise.
    mutating func takeUnfinished() -> [(file: SplitSegment, range: Range<UInt64>)] {
        var taken: [(file: SplitSegment, range: Range<UInt64>)] = []
        while startedBytes > SequentialWriteback.inFlightBytes, !started.isEmpty {
            let oldest = started.removeFirst()
            startedBytes -= UInt64(oldest.range.count)
            taken.append(oldest)
        }
        return taken
    }
}
