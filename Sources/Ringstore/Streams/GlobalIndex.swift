import Synchronization
import SystemPackage

/// The global-order index: for every split event, its journal position, its
/// stream (catalog number) and its version, in position order. It is what
/// `readAll` uses once records have left the ring.
///
/// An append-only file of 24-byte entries `[position u64][version u64][stream
/// u32][crc32c u32]` (the CRC covers the first 20 bytes), appended by the
/// splitter once per round and synced with each checkpoint round. On open, a
/// torn or damaged tail is cut at the first bad entry; entries past the
/// journal's checkpoint are re-derived when the splitter replays the journal,
/// and entries at or after the replay start (with any damaged ones among them)
/// are dropped first so none repeats.
final class GlobalIndex: Sendable {
    static let fileName = "global.index"
    static let entrySize = 24

    struct Entry: Sendable, Equatable {
        var position: UInt64
        var version: UInt64
        var stream: UInt32
    }

    private let file: StorageFile
    /// Number of entries in the file (all whole and valid).
    private let count: Atomic<Int>
    /// Bytes known durable, and whether a sync failed since (then the next one writes the rest again first).
    private let synced: Mutex<(end: UInt64, failed: Bool)>
    /// Starts writing entries back as they accumulate, so a checkpoint's sync finds few left.
    private let writeback: Mutex<SequentialWriteback>
    let path: String

    init(directory: FilePath) throws {
        let path = directory.appending(Self.fileName)
        self.path = path.string
        let file = try StorageFile.open(path, create: true)
        self.file = file
        // A throw before every property is set skips `deinit`: close the file then.
        var initialized = false
        defer { if !initialized { file.close() } }
        let size = try file.size()
        var entries = Int(size) / Self.entrySize
        // Cut a torn tail: check entries from the end back to the last valid one.
        while entries > 0 {
            var buffer = [UInt8](repeating: 0, count: Self.entrySize)
            _ = try buffer.withUnsafeMutableBytes { try file.read(into: $0, at: UInt64((entries - 1) * Self.entrySize)) }
            if Self.decode(buffer[...]) != nil { break }
            entries -= 1
        }
        if UInt64(entries * Self.entrySize) != size { try file.truncate(to: UInt64(entries * Self.entrySize)) }
        count = Atomic(entries)
        synced = Mutex((UInt64(entries * Self.entrySize), false))
        writeback = Mutex(SequentialWriteback(from: UInt64(entries * Self.entrySize)))
        initialized = true
    }

    deinit { file.close() }

    var entryCount: Int { count.load(ordering: .acquiring) }

    /// Drops every entry at or after `position` (before the splitter replays
    /// from there, `position` being the journal's checkpoint), and every damaged
    /// entry after the last good one before it.
    ///
    /// Scans back from the end rather than searching: after a power cut the
    /// entries written since the last sync can come back with holes (a lost
    /// sector reads as zeros) followed by good entries. All of them are at or
    /// after the checkpoint (the checkpoint never passes an unsynced entry), so
    /// everything from the last good entry before the checkpoint on goes; a
    /// search could land on a hole and fail the open.
    func truncate(from position: UInt64) throws {
        let total = entryCount
        var keep = total
        let chunk = 4096
        scanning: while keep > 0 {
            let start = max(0, keep - chunk)
            var bytes = [UInt8](repeating: 0, count: (keep - start) * Self.entrySize)
            _ = try bytes.withUnsafeMutableBytes { try file.read(into: $0, at: UInt64(start * Self.entrySize)) }
            for i in (start..<keep).reversed() {
                let offset = (i - start) * Self.entrySize
                if let entry = Self.decode(bytes[offset..<(offset + Self.entrySize)]), entry.position < position {
                    keep = i + 1
                    break scanning
                }
            }
            keep = start
        }
        guard keep < total else { return }
        try file.truncate(to: UInt64(keep * Self.entrySize))
        count.store(keep, ordering: .releasing)
        writeback.withLock { $0.truncated(to: UInt64(keep * Self.entrySize)) }
        synced.withLock { $0.end = min($0.end, UInt64(keep * Self.entrySize)) }
    }

    /// Appends entries (in position order, after every existing one) with one write.
    func append(_ entries: [Entry]) throws {
        guard !entries.isEmpty else { return }
        var bytes = [UInt8](repeating: 0, count: entries.count * Self.entrySize)
        bytes.withUnsafeMutableBytes { b in
            for (i, entry) in entries.enumerated() {
                let base = i * Self.entrySize
                LittleEndian.store(entry.position, into: b, at: base)
                LittleEndian.store(entry.version, into: b, at: base + 8)
                LittleEndian.store(entry.stream, into: b, at: base + 16)
                let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[base..<(base + 20)]))
                LittleEndian.store(crc, into: b, at: base + 20)
            }
        }
        let start = entryCount
        // At the device's pace (see `SequentialWriteback`): what was started before
        // has reached it, but for the allowance, before more is written.
        writeback.withLock { file.finishWriteback(of: &$0) }
        try bytes.withUnsafeBytes { try file.write($0, at: UInt64(start * Self.entrySize)) }
        count.store(start + entries.count, ordering: .releasing)
        writeback.withLock { $0.written(upTo: UInt64((start + entries.count) * Self.entrySize), of: file) }
    }

    /// Makes the entries durable (after a failed sync, writing the unsynced ones again first).
    func sync() throws {
        let end = UInt64(entryCount * Self.entrySize)
        try synced.withLock { (s: inout (end: UInt64, failed: Bool)) throws in
            if s.failed { try file.rewrite(from: min(s.end, end), to: end) }
            do {
                try file.syncData()
            } catch {
                s.failed = true
                throw error
            }
            s = (end, false)
        }
    }

    /// Reads entries `[from, from + count)`, throwing `.corruptData` naming the file and offset of a damaged one.
    func entries(from index: Int, count wanted: Int) throws -> [Entry] {
        let available = min(wanted, entryCount - index)
        guard index >= 0, available > 0 else { return [] }
        let offset = UInt64(index * Self.entrySize)
        // Not zeroed first: only the bytes read are decoded (a short read is damage).
        let bytes = try [UInt8](unsafeUninitializedCapacity: available * Self.entrySize) { buffer, initialized in
            initialized = try file.read(into: UnsafeMutableRawBufferPointer(buffer), at: offset)
        }
        return try bytes.withUnsafeBytes { b in
            var result: [Entry] = []
            result.reserveCapacity(available)
            for i in 0..<available {
                let start = i * Self.entrySize
                guard start + Self.entrySize <= b.count else {
                    throw RingstoreError(.corruptData, "global index entry \(index + i) is cut short (the file ends at \(offset + UInt64(b.count)))",
                                         path: path, offset: offset + UInt64(start))
                }
                guard let entry = Self.decode(UnsafeRawBufferPointer(rebasing: b[start..<(start + Self.entrySize)])) else {
                    throw RingstoreError(.corruptData, "global index entry \(index + i) is damaged (checksum mismatch)",
                                         path: path, offset: offset + UInt64(start))
                }
                result.append(entry)
            }
            return result
        }
    }

    /// Index of the first entry whose position is ≥ `position` (binary search over the file).
    func firstIndex(atOrAfter position: UInt64) throws -> Int {
        var low = 0
        var high = entryCount
        while low < high {
            let middle = (low + high) / 2
            let entry = try entries(from: middle, count: 1)[0]
            if entry.position >= position { high = middle } else { low = middle + 1 }
        }
        return low
    }

    static func decode(_ bytes: ArraySlice<UInt8>) -> Entry? {
        guard bytes.count == entrySize else { return nil }
        return bytes.withUnsafeBytes { decode($0) }
    }

    /// ``decode(_:)-(ArraySlice<UInt8>)`` in place, for the verifier's scan of millions of entries.
    static func decode(_ b: UnsafeRawBufferPointer) -> Entry? {
        guard b.count == entrySize else { return nil }
        do {
            let crc = LittleEndian.load(UInt32.self, from: b, at: 20)
            guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[0..<20])) == crc,
                  !(LittleEndian.load(UInt64.self, from: b, at: 0) == 0 && crc == 0)
            else { return nil }
            return Entry(position: LittleEndian.load(UInt64.self, from: b, at: 0),
                         version: LittleEndian.load(UInt64.self, from: b, at: 8),
                         stream: LittleEndian.load(UInt32.self, from: b, at: 16))
        }
    }
}
