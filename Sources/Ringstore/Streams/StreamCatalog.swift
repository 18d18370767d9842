import Synchronization
import SystemPackage

/// Every stream the splitter has given a file, numbered in order of first split.
///
/// The numbers let the global-order index name a stream in four bytes. The
/// catalog is an append-only file of records `[length u32][crc32c u32][number
/// u32][name bytes]` (length covers number and name), synced with each
/// checkpoint round before the journal's checkpoint moves. Loading stops at the
/// first torn or damaged record and truncates there: a stream whose entry was
/// lost is simply registered again when its records are split again from the
/// journal (they cannot have left the ring, since the checkpoint never passed
/// an unsynced catalog entry).
final class StreamCatalog: Sendable {
    static let fileName = "streams.catalog"

    private struct State: ~Copyable {
        var streams = StreamNumberTable()
        var pending: [UInt8] = []
        var fileEnd: UInt64 = 0
        /// Bytes known durable, and whether a sync failed since (then the next one writes the rest again first).
        var syncedEnd: UInt64 = 0
        var syncFailed = false
        /// Streams whose records are in the file, and of those, durable (numbers below are).
        var writtenCount = 0
        var syncedCount = 0
        /// Names read from the file at open: their copies are replaced, once each,
        /// by the writer's (see ``share(_:as:)``). One bit per name, set once done.
        var loadedCount = 0
        var shared: [UInt64] = []
    }

    private let file: StorageFile
    private let state: Mutex<State>
    /// Serialises ``write()``: the splitter and the segment mover
    /// (``makeDurable(through:)``) both call it, and two writes of the same
    /// pending records would both remove them. (Not held across ``sync()``'s
    /// `fdatasync`, which the splitter's writes must not wait for.)
    private let writing = Mutex(())
    /// Serialises ``sync()`` (the checkpointer's and the mover's): a sync that
    /// succeeded must not clear the failure of one that ran beside it.
    private let syncing = Mutex(())

    init(directory: FilePath) throws {
        let path = directory.appending(Self.fileName)
        let file = try StorageFile.open(path, create: true)
        self.file = file
        // A throw before every property is set skips `deinit`: close the file then.
        var initialized = false
        defer { if !initialized { file.close() } }
        let size = try file.size()
        var bytes = [UInt8](repeating: 0, count: Int(size))
        _ = try bytes.withUnsafeMutableBytes { try file.read(into: $0, at: 0) }
        var loaded = State()
        var offset = 0
        while offset + 12 <= bytes.count {
            let (length, crc, number) = bytes.withUnsafeBytes { b in
                (Int(LittleEndian.load(UInt32.self, from: b, at: offset)),
                 LittleEndian.load(UInt32.self, from: b, at: offset + 4),
                 LittleEndian.load(UInt32.self, from: b, at: offset + 8))
            }
            guard length >= 4, offset + 8 + length <= bytes.count,
                  CRC32C.checksum(Array(bytes[(offset + 8)..<(offset + 8 + length)])) == crc,
                  number == UInt32(loaded.streams.count)
            else { break }
            let name = String(decoding: bytes[(offset + 12)..<(offset + 8 + length)], as: UTF8.self)
            _ = loaded.streams.append(name)
            offset += 8 + length
        }
        if offset < bytes.count { try file.truncate(to: UInt64(offset)) }
        loaded.loadedCount = loaded.streams.count
        loaded.shared = [UInt64](repeating: 0, count: (loaded.loadedCount + 63) / 64)
        loaded.fileEnd = UInt64(offset)
        loaded.syncedEnd = UInt64(offset)
        loaded.writtenCount = loaded.streams.count
        loaded.syncedCount = loaded.streams.count
        state = Mutex(loaded)
        initialized = true
    }

    deinit { file.close() }

    var count: Int { state.withLock { $0.streams.count } }

    func number(of stream: String) -> UInt32? { state.withLock { $0.streams.number(of: stream) } }

    /// The stream's number and the catalog's copy of its name, if registered,
    /// and whether that copy is one read from the file that could be shared
    /// with the writer's (a name of at most 15 bytes is stored inline: nothing to share).
    func entry(of stream: String) -> (number: UInt32, name: String, shareable: Bool)? {
        state.withLock { s in
            guard let number = s.streams.number(of: stream) else { return nil }
            let n = Int(number)
            let shareable = n < s.loadedCount && s.shared[n / 64] & (1 << UInt64(n % 64)) == 0 && stream.utf8.count > 15
            return (number, s.streams.names[n], shareable)
        }
    }

    /// Keeps `name` (the same bytes) as the copy of stream `number`'s name, so that
    /// the catalog and the writer's index share one; done once per name read from the file.
    func share(_ name: String, as number: UInt32) {
        state.withLock { s in
            let n = Int(number)
            if n < s.loadedCount { s.shared[n / 64] |= 1 << UInt64(n % 64) }
            if s.streams.names[n].utf8.elementsEqual(name.utf8) { s.streams.share(name, as: number) }
        }
    }

    func name(of number: UInt32) -> String? { state.withLock { $0.streams.name(of: number) } }

    /// All stream names, in order of first split.
    func allNames() -> [String] { state.withLock { $0.streams.names } }

    /// The stream's number, registering it (in memory, written by ``write()``) if new.
    func register(_ stream: String) -> UInt32 {
        state.withLock { s in
            if let number = s.streams.number(of: stream) { return number }
            let number = s.streams.append(stream)
            let name = Array(stream.utf8)
            var record = [UInt8](repeating: 0, count: 12)
            record.withUnsafeMutableBytes { r in
                LittleEndian.store(UInt32(4 + name.count), into: r, at: 0)
                LittleEndian.store(number, into: r, at: 8)
            }
            record += name
            let crc = CRC32C.checksum(Array(record[8...]))
            record.withUnsafeMutableBytes { LittleEndian.store(crc, into: $0, at: 4) }
            s.pending += record
            return number
        }
    }

    /// Writes the entries registered since the last call (not synced).
    func write() throws {
        try writing.withLock { _ in
            let (bytes, offset, count) = state.withLock { s -> ([UInt8], UInt64, Int) in (s.pending, s.fileEnd, s.streams.count) }
            guard !bytes.isEmpty else { return }
            try bytes.withUnsafeBytes { try file.write($0, at: offset) }
            // Only once written: after a failed write the same entries are written again.
            state.withLock { s in
                s.fileEnd += UInt64(bytes.count)
                s.pending.removeFirst(bytes.count)
                s.writtenCount = count
            }
        }
    }

    /// Makes the record of stream `number` durable, if it is not yet (writing
    /// and syncing every record registered so far).
    ///
    /// Why: a bucket file names streams by number, and its entries count from
    /// the moment their pages may reach the disk, not from a checkpoint. Were
    /// the number's record not durable then, a cut could leave the entry and
    /// lose the record, and the journal's replay could give the number to
    /// another stream, which would then read the entry as its own.
    func makeDurable(through number: UInt32) throws {
        guard state.withLock({ Int(number) >= $0.syncedCount }) else { return }
        try write()
        try sync()
    }

    /// Makes the written entries durable (after a failed sync, writing the unsynced ones again first).
    func sync() throws {
        try syncing.withLock { _ in
            let (from, end, failed, count) = state.withLock { ($0.syncedEnd, $0.fileEnd, $0.syncFailed, $0.writtenCount) }
            if failed { try file.rewrite(from: min(from, end), to: end) }
            do {
                try file.syncData()
            } catch {
                state.withLock { $0.syncFailed = true }
                throw error
            }
            state.withLock { s in
                s.syncedEnd = end
                s.syncFailed = false
                s.syncedCount = max(s.syncedCount, count)
            }
        }
    }
}
