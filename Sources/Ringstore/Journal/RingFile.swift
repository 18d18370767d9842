import SystemPackage

/// The journal file: a fixed header area followed by a ring of `capacity` bytes,
/// kept mapped read-only for the whole time the store is open.
///
/// This type owns the mapping and is the only code that touches it directly.
/// Writes go through `pwrite` into the same file (the page cache is shared with
/// the mapping, so readers see them at once) and are made durable by
/// `fdatasync`: the project measured that copying into a shared writable
/// mapping and `msync`ing it costs far more, because cleaning mapped pages
/// write-protects them and every writer then faults.
///
/// Logical positions grow forever; `physical = logical % capacity`. All of the
/// wrap-around arithmetic lives in ``segments(from:count:)``.
final class RingFile: @unchecked Sendable {
    // @unchecked Sendable: `base` is a read-only mapping that lives exactly as long
    // as this object (unmapped in deinit); the file descriptor is only used for
    // positional reads/writes and fdatasync, which are thread-safe.

    /// Bytes reserved at the start of the file for the two header slots.
    static let headerAreaSize: UInt64 = 4096

    let file: StorageFile
    let capacity: UInt64
    private let base: UnsafeRawPointer
    private let mappedLength: Int

    private init(file: StorageFile, capacity: UInt64) throws {
        self.file = file
        self.capacity = capacity
        let length = Int(Self.headerAreaSize + capacity)
        self.base = try file.mapReadOnly(length: length)
        self.mappedLength = length
    }

    deinit {
        StorageFile.unmap(base, length: mappedLength)
        file.close()
    }

    /// Creates a journal file crash-safely: written in full (zeros, so later
    /// overwrites never allocate blocks) under a temporary name with `header`
    /// in slot 0, synced, then renamed into place and the directory synced.
    static func create(at path: FilePath, capacity: UInt64, header: [UInt8]) throws -> RingFile {
        let directory = path.removingLastComponent()
        let temporary = FilePath(path.string + ".creating")
        StorageDirectory.remove(temporary)
        let file = try StorageFile.open(temporary, create: true, exclusive: true)
        do {
            let total = headerAreaSize + capacity
            let chunk = [UInt8](repeating: 0, count: 1 << 20)
            var offset: UInt64 = 0
            while offset < total {
                let count = Int(min(UInt64(chunk.count), total - offset))
                try chunk.withUnsafeBytes { bytes in
                    try file.write(UnsafeRawBufferPointer(rebasing: bytes[0..<count]), at: offset)
                }
                offset += UInt64(count)
            }
            try header.withUnsafeBytes { bytes in try file.write(bytes, at: 0) }
            try file.syncData()
            // The zeros sit in the page cache in large folios (1 MiB writes); left
            // there, every small append would dirty, and write back, a whole folio.
            file.dropCache(offset: 0, count: 0)
        } catch {
            file.close()
            StorageDirectory.remove(temporary)
            throw error
        }
        file.close()
        try StorageDirectory.rename(temporary, to: path)
        try StorageDirectory.sync(directory)
        return try open(at: path, capacity: capacity)
    }

    /// Opens and maps an existing journal whose ring holds `capacity` bytes.
    static func open(at path: FilePath, capacity: UInt64) throws -> RingFile {
        let file = try StorageFile.open(path)
        let size: UInt64
        do { size = try file.size() } catch { file.close(); throw error }
        guard size == headerAreaSize + capacity else {
            file.close()
            throw RingstoreError(.corruptData,
                                 "journal \(path) is \(size) bytes but its header says \(headerAreaSize + capacity)",
                                 path: path.string)
        }
        do { return try RingFile(file: file, capacity: capacity) } catch { file.close(); throw error }
    }

    /// Reads the header area through the file (not the mapping), for opening.
    static func readHeaderArea(at path: FilePath) throws -> [UInt8] {
        let file = try StorageFile.open(path)
        defer { file.close() }
        var bytes = [UInt8](repeating: 0, count: Int(headerAreaSize))
        let count = try bytes.withUnsafeMutableBytes { buffer in try file.read(into: buffer, at: 0) }
        return Array(bytes[0..<count])
    }

    // MARK: - Positions

    /// The physical offset within the ring of a logical position.
    @inline(__always)
    func physical(_ position: UInt64) -> UInt64 { position % capacity }

    /// Bytes from `position` to the end of the ring (before it wraps to 0).
    @inline(__always)
    func bytesToEnd(from position: UInt64) -> UInt64 { capacity - physical(position) }

    /// The logical range `[from, from + count)` as at most two physical ranges
    /// (the second, if any, starts at ring offset 0). `count` must be ≤ capacity.
    func segments(from position: UInt64, count: UInt64) -> (first: Range<UInt64>, second: Range<UInt64>?) {
        precondition(count <= capacity, "a ring range cannot be longer than the ring")
        let start = physical(position)
        let firstCount = min(count, capacity - start)
        let first = start..<(start + firstCount)
        return firstCount == count ? (first, nil) : (first, 0..<(count - firstCount))
    }

    // MARK: - I/O

    /// Writes the bytes of logical range `[position, position + bytes.count)`
    /// into the ring and, given `zeroFillingPageBefore` (the end of the free
    /// space: checkpoint + capacity), zeros from their end to the end of that
    /// page, but not at or past it.
    ///
    /// Why the zeros: behind the checkpoint the ring's pages leave the page cache
    /// (see ``dropCache(from:to:)``), so on the next lap a write ending inside a
    /// page made the kernel read that page from the disk first (a write that
    /// covers only part of an uncached page must). Filling the page makes the
    /// write cover it whole; the zeros lie in free space, and the next flush
    /// writes records over them. Recovery stops at them as at any unwritten space.
    func write(_ bytes: UnsafeRawBufferPointer, at position: UInt64, zeroFillingPageBefore freeEnd: UInt64? = nil) throws {
        let end = position + UInt64(bytes.count)
        let intoPage = physical(end) % 4096
        let fill = freeEnd.map { freeEnd in intoPage == 0 ? 0 : min(4096 - intoPage, freeEnd > end ? freeEnd - end : 0) } ?? 0
        let (first, second) = segments(from: position, count: UInt64(bytes.count))
        let firstCount = Int(first.count)
        let last = second ?? first
        let lastBytes = UnsafeRawBufferPointer(rebasing: bytes[(second == nil ? 0 : firstCount)...])
        if second != nil {
            try file.write(UnsafeRawBufferPointer(rebasing: bytes[0..<firstCount]), at: Self.headerAreaSize + first.lowerBound)
        }
        try file.write(lastBytes, followedByZeros: Int(fill), at: Self.headerAreaSize + last.lowerBound)
    }

    /// Drops the page cache of the (clean) pages wholly inside the logical range,
    /// which the next lap of the ring will overwrite.
    ///
    /// Why: the kernel caches file pages in folios sized by the writes and
    /// reads that brought them in, up to megabytes. A later small append into
    /// a large cached folio dirties all of it, and the flush writes all of it
    /// back: with one-event appends that multiplied the bytes sent to the disk
    /// (flash wear) by a hundred. Dropped, the pages are brought back by the
    /// next lap's writes in folios the size of those writes.
    func dropCache(from start: UInt64, to end: UInt64) {
        forEachWholePageRun(from: start, to: end) { fileOffset, count in
            file.dropCache(offset: fileOffset, count: count)
        }
    }

    /// Drops this process's mapping of the pages wholly inside the logical
    /// range (they stay in the page cache; a later read maps them again). Called
    /// by the splitter behind its scan and its checkpoint's writing
    /// (`SplitterMappedPages`), for records it has written to stream files, and
    /// again for ring space the checkpoint has passed, so that the process's
    /// resident memory holds about what is being read of the ring rather than
    /// all of it.
    func releasePages(from start: UInt64, to end: UInt64) {
        forEachWholePageRun(from: start, to: end) { fileOffset, count in
            // Safe: the run lies inside the mapping (a range of the ring, plus the header area).
            StorageFile.releaseMappedPages(at: base + Int(fileOffset), count: count)
        }
    }

    /// Calls `body` with (file offset, byte count) of each run of whole 4 KiB
    /// pages inside the logical range (at most two: the range may wrap).
    private func forEachWholePageRun(from start: UInt64, to end: UInt64, _ body: (UInt64, Int) -> Void) {
        guard end > start else { return }
        let (first, second) = segments(from: start, count: min(end - start, capacity))
        let pageSize: UInt64 = 4096
        for range in [first] + (second.map { [$0] } ?? []) {
            let from = (Self.headerAreaSize + range.lowerBound + pageSize - 1) / pageSize * pageSize
            let to = (Self.headerAreaSize + range.upperBound) / pageSize * pageSize
            if to > from { body(from, Int(to - from)) }
        }
    }

    /// `fdatasync`s the ring's descriptor. Only ``RingSync`` calls it: a sync
    /// made anywhere else could take the writeback error a flush needs to see.
    func sync() throws {
        try file.syncData()
    }

    /// Writes header slot bytes at `offset` within the header area (not synced:
    /// ``RingSync/writeHeader(_:at:)`` syncs them).
    func writeHeaderSlot(_ bytes: [UInt8], at offset: UInt64) throws {
        precondition(offset + UInt64(bytes.count) <= Self.headerAreaSize)
        try bytes.withUnsafeBytes { buffer in try file.write(buffer, at: offset) }
    }

    /// Bytes the first `pread` of ``copyRecord(at:into:)`` asks for: a whole
    /// small record, so most records take one call.
    static let copiedRecordProbe = 1024

    /// Copies the record starting at logical `position` into `scratch` (grown as
    /// needed) with `pread`, not through the mapping, and returns how many bytes
    /// of it are there: the record's whole length when its header is readable
    /// and the length fits before the ring's end, otherwise what could be read
    /// (``JournalRecord/inspect(_:expectedPosition:verifyChecksum:)`` then names
    /// the damage).
    ///
    /// Why: a read through the mapping maps the pages around it (a fault maps up
    /// to 64 KiB of cached pages), and mapped pages count in the process's
    /// resident memory until released. Reading many streams' records scattered
    /// over tens of megabytes of the ring maps all of it; copies map nothing.
    func copyRecord(at position: UInt64, into scratch: inout [UInt8]) throws -> Int {
        let offset = Self.headerAreaSize + physical(position)
        let toEnd = Int(bytesToEnd(from: position))
        let first = min(toEnd, Self.copiedRecordProbe)
        if scratch.count < first { scratch = [UInt8](repeating: 0, count: Self.copiedRecordProbe) }
        var count = try scratch.withUnsafeMutableBytes { buffer in
            try file.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<first]), at: offset)
        }
        guard count >= 4 else { return count }
        let length = Int(UInt32(littleEndian: scratch.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }))
        guard length > count, length <= toEnd else { return count }
        if scratch.count < length { scratch += repeatElement(0, count: length - scratch.count) }
        count += try scratch.withUnsafeMutableBytes { [count] buffer in
            try file.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[count..<length]), at: offset + UInt64(count))
        }
        return count
    }

    /// Calls `body` with the mapped bytes of physical ring range `[offset, offset + count)`.
    ///
    /// The pointer must not escape `body`. The bytes may change under the caller
    /// once the writer reuses that part of the ring, so callers validate what
    /// they read (checksum and position) after copying it out.
    @inline(__always)
    func withMappedBytes<R, E: Error>(
        physical offset: UInt64, count: Int, _ body: (UnsafeRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        precondition(offset + UInt64(count) <= capacity, "mapped read past the end of the ring")
        // Safe: the range lies inside the mapping, checked just above.
        return try body(UnsafeRawBufferPointer(start: base + Int(Self.headerAreaSize + offset), count: count))
    }
}
