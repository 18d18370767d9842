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
/// A value owned by the file's single writer (the splitter).
struct SequentialWriteback: Sendable {
    /// How much is written before its writeback starts: 10 ms of a 25 MB/s card.
    static let chunkBytes: UInt64 = 256 << 10

    /// Writeback has been started for everything before this offset.
    private(set) var startedBefore: UInt64

    init(from offset: UInt64) {
        startedBefore = offset
    }

    /// Notes that the file now ends at `end`, starting the writeback of what was
    /// written since the last start once that is a chunk or more.
    mutating func written(upTo end: UInt64, of file: StorageFile) {
        guard end >= startedBefore + Self.chunkBytes else { return }
        file.startWriteback(from: startedBefore, count: end - startedBefore)
        startedBefore = end
    }

    /// The file was cut at `end`: what follows will be written again.
    mutating func truncated(to end: UInt64) {
        startedBefore = min(startedBefore, end)
    }
}
