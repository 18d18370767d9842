/// Starts the writeback of a file that grows at its end once every
/// ``chunkBytes`` written, rather than leaving it all to the next sync.
///
/// Why: the split segments and the global index grow by megabytes between two
/// checkpoints. Left dirty, the checkpoint's `fdatasync` sends them to the
/// device in one burst, and on a slow card (25 MB/s) every journal flush queued
/// behind that burst waits for it: the longest appends (over 100 ms) measured
/// there were exactly those. Started in chunks as they are written, they reach
/// the device in small pieces spread over the interval (RocksDB's
/// `bytes_per_sync`, PostgreSQL's `checkpoint_flush_after`), and the sync that
/// makes them durable finds little left to write.
///
/// Starting the writeback is not enough when the writer is faster than the
/// device: a checkpoint's segment entries (megabytes, built in a burst of
/// processor time) were all handed to the device within a fraction of a
/// second, and on the card a journal flush then waited behind all of them:
/// with payloads that compress as real JSON does (about 9-17 MB of segment
/// entries a checkpoint at 28,000 one-event appends a second) flushes took up
/// to 380 ms. So before its next write the writer waits (``unfinished``, then
/// ``finished(upTo:)``; its owner waits outside any lock readers take) until
/// no more than ``inFlightBytes`` of what it started are still on their way to
/// the device: the file never has more than that, plus one write, in the
/// device's queue, and the writer goes at the device's pace, not ahead of it.
///
/// The allowance is fixed. Measured (docs/PERFORMANCE.md, "Payloads that
/// compress as real events do"): waiting for the range started last cost
/// 100-event appends on the working disk over a quarter of their rate (the
/// splitter, their bottleneck there, blocked on nearly every write), 512 KiB
/// about a tenth. Letting the allowance grow while waits did not block (as a
/// congestion window grows), or follow the pace a blocked wait saw, failed
/// on the card: between checkpoints nothing waits long, the allowance grew,
/// and the next checkpoint's entries reached the card's queue in one burst
/// again (appends of 148-380 ms).
///
/// A value owned by the file's single writer (the splitter).
struct SequentialWriteback: Sendable {
    /// How much is written before its writeback starts: 10 ms of a 25 MB/s card.
    static let chunkBytes: UInt64 = 256 << 10
    /// How much started writeback may still be on its way to the device before
    /// the writer waits: 20 ms of a 25 MB/s card, a millisecond or two of the working disk.
    static let inFlightBytes: UInt64 = 512 << 10

    /// Writeback has been started for everything before this offset.
    private(set) var startedBefore: UInt64
    /// Everything before this offset has been waited for (it reached the device).
    private(set) var finishedBefore: UInt64
    /// Where each range started and not yet waited for ends, oldest first.
    private var startedEnds: [UInt64] = []

    init(from offset: UInt64) {
        startedBefore = offset
        finishedBefore = offset
    }

    /// Notes that the file now ends at `end`, starting the writeback of what was
    /// written since the last start once that is a chunk or more.
    mutating func written(upTo end: UInt64, of file: StorageFile) {
        guard end >= startedBefore + Self.chunkBytes else { return }
        file.startWriteback(from: startedBefore, count: end - startedBefore)
        startedBefore = end
        startedEnds.append(end)
    }

    /// The oldest ranges started and not yet waited for, as one range, if more
    /// than ``inFlightBytes`` started would be left otherwise: to wait for
    /// (``StorageFile/finishWriteback(from:count:)``) before the next write.
    var unfinished: Range<UInt64>? {
        guard startedBefore - finishedBefore > Self.inFlightBytes,
              let end = startedEnds.first(where: { startedBefore - $0 <= Self.inFlightBytes })
        else { return nil }
        return finishedBefore..<end
    }

    /// Everything before `offset` has been waited for.
    mutating func finished(upTo offset: UInt64) {
        finishedBefore = max(finishedBefore, min(offset, startedBefore))
        startedEnds.removeAll { $0 <= finishedBefore }
    }

    /// The file was cut at `end`: what follows will be written again.
    mutating func truncated(to end: UInt64) {
        startedBefore = min(startedBefore, end)
        finishedBefore = min(finishedBefore, end)
        startedEnds.removeAll { $0 > startedBefore }
    }
}

extension StorageFile {
    /// Waits until `writeback`'s unfinished range has reached the device, and
    /// notes it. For a writer that holds its `SequentialWriteback` itself.
    func finishWriteback(of writeback: inout SequentialWriteback) {
        guard let range = writeback.unfinished else { return }
        finishWriteback(from: range.lowerBound, count: range.upperBound - range.lowerBound)
        writeback.finished(upTo: range.upperBound)
    }
}
