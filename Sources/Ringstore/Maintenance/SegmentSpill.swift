import SystemPackage

/// The split-segment entries of every stream, routed as the routing's walk
/// over the segments (``SegmentRouting``) meets them into temporary files, each holding a
/// fixed slice of catalog numbers, from which each range of streams'
/// ``SegmentHarvest`` is then read.
///
/// Why: gathering a range straight from the segments costs a walk over every
/// segment per range (touching all their pages), and a store whose segments
/// hold many times the memory budget needs tens of ranges (20 walks over
/// 1.26 GiB at 64 MiB). Routing copies each entry once more, but the segments
/// are walked once more only, during the verification that precedes every
/// compaction (``StoreVerifier/segmentSink``). The files are cut by catalog number
/// (``streamsPerFile``), not by the ranges, because the ranges follow each
/// stream's segment bytes, which are known only once the walk is over; a range
/// reads the files its numbers fall in and keeps its own streams' entries, so
/// a file straddling two ranges is read by both (with up to ``maxFiles``
/// files and ranges of tens of them, a small share).
///
/// Memory is one write buffer per file (together at most a quarter of the
/// budget, at least 16 KiB each) during the walk, then one range's entries at
/// a time, as before.
///
/// The files are written under the compaction's new folder (`compact.new/`),
/// which every open and tool run deletes unless a compaction has committed,
/// and each is unlinked once the last range it holds was read, the folder
/// before the new files are synced: nothing of them is ever synced or
/// reaches the commit. A compaction refused after the walk removes the folder.
final class SegmentSpill {
    /// Record of one entry in a file: stream number (u32), block length (u32), block.
    static let recordHeader = 8
    /// At most this many files (open at once during the walk).
    static let maxFiles = 256
    let folder: FilePath
    /// Streams `0..<streams` are routed; entries of others are left out (the catalog has no such number).
    let streams: Int
    /// File `i` holds the entries of streams `i * streamsPerFile ..< (i + 1) * streamsPerFile`.
    let streamsPerFile: Int
    /// Bytes of each file.
    private(set) var fileBytes: [Int]
    private var files: [StorageFile?]
    private var buffers: [UnsafeMutableRawBufferPointer]
    private var used: [Int]
    private let capacity: Int

    /// The folder of the files, under the compaction's new folder.
    static let folderName = "spill"

    static func fileName(of index: Int) -> String { "part-\(index)" }

    /// Creates `folder` (it must not exist) and up to `maxFiles` files for the entries of streams `0..<streams`.
    init(folder: FilePath, streams: Int, maxFiles: Int = SegmentSpill.maxFiles, budget: UInt64) throws {
        self.folder = folder
        self.streams = streams
        let count = max(1, min(maxFiles, streams))
        streamsPerFile = max(1, (streams + count - 1) / count)
        let fileCount = max(1, (streams + streamsPerFile - 1) / streamsPerFile)
        capacity = max(16 << 10, min(1 << 20, Int(budget / 4) / fileCount))
        fileBytes = Array(repeating: 0, count: fileCount)
        used = Array(repeating: 0, count: fileCount)
        files = []
        buffers = []
        try StorageDirectory.create(folder)
        do {
            for index in 0..<fileCount {
                files.append(try StorageFile.open(folder.appending(Self.fileName(of: index)), create: true, exclusive: true))
                buffers.append(.allocate(byteCount: capacity, alignment: 16))
            }
        } catch {
            closeFiles()
            throw error
        }
    }

    deinit { closeFiles() }

    private func closeFiles() {
        for file in files { file?.close() }
        files = files.map { _ in nil }
        for buffer in buffers { buffer.deallocate() }
        buffers = []
    }

    /// Appends one entry's block (header and stored bytes) of `stream`, from
    /// segment `segment`, to its file: the record's body is a ``SegmentHarvest`` unit.
    func add(stream: UInt32, segment: UInt32, block: UnsafeRawBufferPointer) throws {
        guard Int(stream) < streams else { return }
        let index = Int(stream) / streamsPerFile
        let unit = SegmentHarvest.unitPrefix + block.count
        let record = Self.recordHeader + unit
        if used[index] + record > capacity { try flush(index) }
        if record > capacity {
            // Larger than the buffer: its own two writes.
            var head = (stream.littleEndian, UInt32(unit).littleEndian, segment.littleEndian)
            try withUnsafeBytes(of: &head) { try files[index]!.write($0, at: UInt64(fileBytes[index])) }
            try files[index]!.write(block, at: UInt64(fileBytes[index] + Self.recordHeader + SegmentHarvest.unitPrefix))
            fileBytes[index] += record
            return
        }
        let out = buffers[index]
        out.storeBytes(of: stream.littleEndian, toByteOffset: used[index], as: UInt32.self)
        out.storeBytes(of: UInt32(unit).littleEndian, toByteOffset: used[index] + 4, as: UInt32.self)
        out.storeBytes(of: segment.littleEndian, toByteOffset: used[index] + Self.recordHeader, as: UInt32.self)
        let body = used[index] + Self.recordHeader + SegmentHarvest.unitPrefix
        UnsafeMutableRawBufferPointer(rebasing: out[body..<(used[index] + record)]).copyMemory(from: block)
        used[index] += record
    }

    private func flush(_ index: Int) throws {
        guard used[index] > 0 else { return }
        try files[index]!.write(UnsafeRawBufferPointer(rebasing: buffers[index][0..<used[index]]), at: UInt64(fileBytes[index]))
        fileBytes[index] += used[index]
        used[index] = 0
    }

    /// Writes what the buffers hold and closes the files (the walk is over).
    func finish() throws {
        for index in fileBytes.indices { try flush(index) }
        closeFiles()
    }

    /// The entries of streams `numbers`, oldest first per stream (the walk met them in
    /// segment order), read from the files their numbers fall in; a file none of the
    /// later ranges needs (ranges come in rising order) is unlinked once read.
    /// `expectedBytes` sizes the arena; `reusing`: the previous range's arena
    /// (``SegmentHarvest/takeArena()``, taken, `reusing` is left empty), whose memory is filled again rather than
    /// allocated anew (a fresh arena per range faulted in every page of it again:
    /// the whole spill's bytes in page faults over a compaction).
    func harvest(_ numbers: Range<UInt32>, expectedBytes: UInt64, reusing: inout [UInt8]) throws -> SegmentHarvest {
        // Taken over (not copied), so that the buffer is uniquely held and kept when emptied.
        var arena: [UInt8] = []
        swap(&arena, &reusing)
        arena.removeAll(keepingCapacity: true)
        arena.reserveCapacity(Int(expectedBytes))
        var spans = [[Range<Int>]](repeating: [], count: numbers.count)
        let low = Int(numbers.lowerBound), high = min(Int(numbers.upperBound), streams)
        guard low < high else { return SegmentHarvest(numbers: numbers, arena: arena, spans: spans) }
        for index in (low / streamsPerFile)...((high - 1) / streamsPerFile) {
            let path = folder.appending(Self.fileName(of: index))
            let size = fileBytes[index]
            if size > 0 {
                let file = try StorageFile.open(path)
                defer { file.close() }
                let base = try file.mapReadOnly(length: size)
                defer { StorageFile.unmap(base, length: size) }
                let bytes = UnsafeRawBufferPointer(start: base, count: size)
                var offset = 0
                while offset < size {
                    let whole = offset + Self.recordHeader <= size
                    let stream = whole ? LittleEndian.load(UInt32.self, from: bytes, at: offset) : .max
                    let length = whole ? Int(LittleEndian.load(UInt32.self, from: bytes, at: offset + 4)) : -1
                    guard Int(stream) / streamsPerFile == index, length >= 0, length <= size - offset - Self.recordHeader else {
                        throw RingstoreError(.ioError, "compaction's temporary file \(path) reads back damaged at offset \(offset)",
                                             path: path.string, offset: UInt64(offset))
                    }
                    let start = offset + Self.recordHeader
                    if numbers.contains(stream) {
                        let at = arena.count
                        arena.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start..<(start + length)]))
                        spans[Int(stream - numbers.lowerBound)].append(at..<arena.count)
                    }
                    offset = start + length
                }
            }
            // Later ranges start at or after this one's end: a file ending there is done.
            if min((index + 1) * streamsPerFile, streams) <= Int(numbers.upperBound) { try StorageDirectory.removeFile(path) }
        }
        return SegmentHarvest(numbers: numbers, arena: arena, spans: spans)
    }

    /// Removes the folder and whatever of its files is left.
    func remove() throws {
        closeFiles()
        try StorageDirectory.removeTree(folder)
    }
}
