import SystemPackage

/// The split-segment entries of every range of streams, routed by one pass
/// over the segments into one temporary file per range, from which each
/// range's ``SegmentHarvest`` is then read in one sequential read.
///
/// Why: gathering a range straight from the segments costs a walk over every
/// segment per range (touching all their pages), and a store whose segments
/// hold many times the memory budget needs tens of ranges (20 walks over
/// 1.26 GiB at 64 MiB). Routing copies each entry once more, but walks the
/// segments once. Memory is one write buffer per range (together at most a
/// quarter of the budget, at least 16 KiB each) during the pass, then one
/// range's entries at a time, as before.
///
/// The files are written under the compaction's new folder (`compact.new/`),
/// which every open and tool run deletes unless a compaction has committed,
/// and each is unlinked as soon as it is read, the folder before the new files
/// are synced: nothing of them is ever synced or reaches the commit.
final class SegmentSpill {
    /// Record of one entry in a range's file: stream number (u32), block length (u32), block.
    static let recordHeader = 8
    /// At most this many ranges are routed (files open at once); beyond, one pass per range.
    static let maxRanges = 256
    let folder: FilePath
    let ranges: [Range<UInt32>]
    /// Bytes of each range's file.
    private(set) var fileBytes: [Int]
    /// Bytes of the segment files walked.
    private(set) var bytesRead: UInt64 = 0

    private init(folder: FilePath, ranges: [Range<UInt32>]) {
        self.folder = folder
        self.ranges = ranges
        fileBytes = Array(repeating: 0, count: ranges.count)
    }

    /// The folder of the files, under the compaction's new folder.
    static let folderName = "spill"

    static func fileName(of range: Int) -> String { "range-\(range)" }

    /// Walks the segments in `segments` once, appending each entry of a stream
    /// in one of `ranges` (consecutive, from 0) to that range's file in `folder`
    /// (created; it must not exist). Entries of streams past the last range are
    /// left out, as a pass per range leaves them out.
    static func route(from segments: FilePath, ranges: [Range<UInt32>], into folder: FilePath, budget: UInt64,
                      progress: (Int, Int) -> Void = { _, _ in }) throws -> SegmentSpill {
        let spill = SegmentSpill(folder: folder, ranges: ranges)
        try StorageDirectory.create(folder)
        let streams = Int(ranges.last?.upperBound ?? 0)
        var rangeOf = [UInt16](repeating: 0, count: streams)
        for (index, range) in ranges.enumerated() {
            for number in range { rangeOf[Int(number)] = UInt16(index) }
        }
        let capacity = max(16 << 10, min(1 << 20, Int(budget / 4) / max(ranges.count, 1)))
        var buffers: [UnsafeMutableRawBufferPointer] = []
        var used = [Int](repeating: 0, count: ranges.count)
        var files: [StorageFile] = []
        defer {
            for file in files { file.close() }
            for buffer in buffers { buffer.deallocate() }
        }
        for index in ranges.indices {
            buffers.append(.allocate(byteCount: capacity, alignment: 64))
            files.append(try StorageFile.open(folder.appending(fileName(of: index)), create: true, exclusive: true))
        }
        func flush(_ index: Int) throws {
            guard used[index] > 0 else { return }
            try files[index].write(UnsafeRawBufferPointer(rebasing: buffers[index][0..<used[index]]), at: UInt64(spill.fileBytes[index]))
            spill.fileBytes[index] += used[index]
            used[index] = 0
        }
        spill.bytesRead = try SegmentHarvest.walk(segments, wants: { Int($0) < streams }, progress: progress) { stream, block in
            let index = Int(rangeOf[Int(stream)])
            let record = recordHeader + block.count
            if used[index] + record > capacity { try flush(index) }
            if record > capacity {
                // Larger than the buffer: its own two writes.
                var head = (stream.littleEndian, UInt32(block.count).littleEndian)
                try withUnsafeBytes(of: &head) { try files[index].write($0, at: UInt64(spill.fileBytes[index])) }
                try files[index].write(block, at: UInt64(spill.fileBytes[index] + recordHeader))
                spill.fileBytes[index] += record
                return
            }
            let out = buffers[index]
            out.storeBytes(of: stream.littleEndian, toByteOffset: used[index], as: UInt32.self)
            out.storeBytes(of: UInt32(block.count).littleEndian, toByteOffset: used[index] + 4, as: UInt32.self)
            UnsafeMutableRawBufferPointer(rebasing: out[(used[index] + recordHeader)..<(used[index] + record)]).copyMemory(from: block)
            used[index] += record
        }
        for index in ranges.indices { try flush(index) }
        return spill
    }

    /// Reads range `index`'s file whole into a harvest, then unlinks it.
    func harvest(_ index: Int) throws -> SegmentHarvest {
        let numbers = ranges[index]
        let path = folder.appending(Self.fileName(of: index))
        let size = fileBytes[index]
        let file = try StorageFile.open(path)
        defer { file.close() }
        // Read straight into the arena's storage (no zero-filling first).
        let arena = try [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            var got = 0
            while got < size {
                let n = try file.read(into: UnsafeMutableRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(buffer)[got..<size]), at: UInt64(got))
                if n == 0 { break }
                got += n
            }
            initialized = got
            guard got == size else {
                throw RingstoreError(.ioError, "compaction's temporary file \(path) ended at \(got) of its \(size) bytes", path: path.string)
            }
        }
        try StorageDirectory.removeFile(path)
        var spans = [[Range<Int>]](repeating: [], count: numbers.count)
        try arena.withUnsafeBytes { bytes in
            var offset = 0
            while offset < size {
                let stream = offset + Self.recordHeader <= size ? LittleEndian.load(UInt32.self, from: bytes, at: offset) : .max
                let length = offset + Self.recordHeader <= size ? Int(LittleEndian.load(UInt32.self, from: bytes, at: offset + 4)) : -1
                guard numbers.contains(stream), length >= 0, length <= size - offset - Self.recordHeader else {
                    throw RingstoreError(.ioError, "compaction's temporary file \(path) reads back damaged at offset \(offset)",
                                         path: path.string, offset: UInt64(offset))
                }
                let start = offset + Self.recordHeader
                spans[Int(stream - numbers.lowerBound)].append(start..<(start + length))
                offset = start + length
            }
        }
        return SegmentHarvest(numbers: numbers, arena: arena, spans: spans)
    }

    /// Removes the folder and whatever of its files is left.
    func remove() throws {
        try StorageDirectory.removeTree(folder)
    }
}
