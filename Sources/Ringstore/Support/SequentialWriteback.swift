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
/// ``finished(upTo:waitedNanoseconds:)``; its owner waits outside any lock
/// readers take) until no more than ``inFlightBytes`` of what it started are
/// still on their way to the device: the file never has more than that, plus
/// one write, in the device's queue, and the writer goes at the device's pace,
/// not ahead of it.
///
/// How much may be in flight adapts to the device, as a congestion window
/// does: a wait that blocked (the device was behind) halves it, down to
/// ``minimumInFlightBytes`` (20 ms of a 25 MB/s card); a wait that found its
/// range written already doubles it, up to ``maximumInFlightBytes``. A fixed
/// 512 KiB cost 100-event appends on the working disk about a tenth of their
/// rate (the splitter, their bottleneck there, blocked on writes the disk
/// takes in a millisecond), and a size that suits the working disk lets the
/// card's queue grow to hundreds of milliseconds.
///
/// A value owned by the file's single writer (the splitter).
struct SequentialWriteback: Sendable {
    /// How much is written before its writeback starts: 10 ms of a 25 MB/s card.
    static let chunkBytes: UInt64 = 256 << 10
    /// Bounds of ``inFlightBytes``.
    static let minimumInFlightBytes: UInt64 = 512 << 10
    static let maximumInFlightBytes: UInt64 = 32 << 20
    /// A wait longer than this means the device was behind.
    static let blockedNanoseconds: Int64 = 1_000_000

    /// How much started writeback may still be on its way to the device before
    /// the writer waits (adapted by ``finished(upTo:waitedNanoseconds:)``).
    private(set) var inFlightBytes = minimumInFlightBytes

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
        guard startedBefore - finishedBefore > inFlightBytes,
              let end = startedEnds.first(where: { startedBefore - $0 <= inFlightBytes })
        else { return nil }
        return finishedBefore..<end
    }

    /// Everything before `offset` has been waited for, which took `waitedNanoseconds`.
    mutating func finished(upTo offset: UInt64, waitedNanoseconds: Int64) {
        finishedBefore = max(finishedBefore, min(offset, startedBefore))
        startedEnds.removeAll { $0 <= finishedBefore }
        inFlightBytes = waitedNanoseconds > Self.blockedNanoseconds
            ? max(Self.minimumInFlightBytes, inFlightBytes / 2)
            : min(Self.maximumInFlightBytes, inFlightBytes * 2)
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
        let start = monotonicNanoseconds()
        finishWriteback(from: range.lowerBound, count: range.upperBound - range.lowerBound)
        writeback.finished(upTo: range.upperBound, waitedNanoseconds: monotonicNanoseconds() - start)
    }
}
