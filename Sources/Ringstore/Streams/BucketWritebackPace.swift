/// Keeps the bucket files' writes at the device's pace, all buckets together:
/// a file's appended bytes are handed to the device once ``fileChunkBytes``
/// of it are pending, and an append waits while more than
/// ``SequentialWriteback/inFlightBytes`` started, over all the files, are
/// still on their way. Before the mover's batch sync the rest is handed over
/// the same way (``StreamBuckets/drainWriteback()``), so that the sync finds
/// little left to write.
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
/// Why a chunk per file: the card serves 1,000 writes a second, so a write
/// under about 25 KB is bound by the count and not by the bytes. Started
/// every 256 KiB over all 64 files, each file's range was about 4 KiB: the
/// 100,000-stream hold moved 4 MB a second, one write each.
///
/// A value kept under ``StreamBuckets``' lock; waits happen outside it.
struct BucketWritebackPace: Sendable {
    /// A file's pending bytes are started once this many (64 KiB: 2.6 ms of a
    /// 25 MB/s card, a write that its bytes, not its count, make slow).
    static let fileChunkBytes: UInt64 = 64 << 10

    /// Appended and not yet handed to the device, by file number: the file and where the range begins.
    private var unstarted: [UInt32: (file: SplitSegment, from: UInt64)] = [:]
    /// Started and not yet waited for, oldest first.
    private var started: [(file: SplitSegment, range: Range<UInt64>)] = []
    private var startedBytes: UInt64 = 0

    /// Notes `count` bytes appended to `file`, which now ends at `file.end`;
    /// starts the writeback of the file's pending range once it is a chunk.
    mutating func appended(_ count: UInt64, to file: SplitSegment) {
        let from = unstarted[file.number]?.from ?? file.end - count
        unstarted[file.number] = (file, from)
        if file.end - from >= Self.fileChunkBytes { start(file.number) }
    }

    /// Hands file `number`'s pending range to the device.
    private mutating func start(_ number: UInt32) {
        guard let pending = unstarted.removeValue(forKey: number) else { return }
        let range = pending.from..<pending.file.end
        guard !range.isEmpty else { return }
        pending.file.file.startWriteback(from: range.lowerBound, count: UInt64(range.count))
        started.append((pending.file, range))
        startedBytes += UInt64(range.count)
    }

    /// Starts the largest pending range of any file; false if none is pending.
    mutating func startLargestPending() -> Bool {
        guard let largest = unstarted.max(by: { $0.value.file.end - $0.value.from < $1.value.file.end - $1.value.from }) else {
            return false
        }
        start(largest.key)
        return true
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
