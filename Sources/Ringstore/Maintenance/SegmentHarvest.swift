import SystemPackage

/// The split-segment entries of a range of streams, gathered by one
/// sequential pass over every segment.
///
/// Why: a stream's entries are chained newest to oldest across the segments,
/// and following 100,000 chains costs one small random read per entry (millions
/// of `pread`s). Compaction instead takes the streams in ranges of catalog
/// numbers whose entries fit a memory budget (``ranges(segmentBytes:budget:)``),
/// and gathers each range's blocks: from what the routing walk over the
/// segments, beside the verification, gathered (``SegmentRouting``: in memory, or routed to
/// temporary files, ``SegmentSpill``), or, when it gathered nothing (a dry
/// run, which writes no files), from one pass per range that keeps only that
/// range's blocks. Segments are written in journal order, so each stream's
/// entries arrive oldest first.
struct SegmentHarvest: Sendable {
    let numbers: Range<UInt32>
    /// Gathered entries back to back, each a unit: the number of the segment it
    /// came from (4 bytes), then its whole block (header and stored bytes). The
    /// number finds the dictionary (``dictionaries``) of a block compressed against
    /// its segment's (``CompressionDictionary``); read a unit with ``unit(_:_:)``.
    private(set) var arena: [UInt8] = []
    /// The segments' dictionaries by segment number (``dictionaries(in:)``), set by whoever rewrites the blocks.
    var dictionaries: [UInt32: CompressionDictionary] = [:]
    /// Per stream of `numbers` (by `number - numbers.lowerBound`): its blocks' ranges in `arena`, oldest first.
    private var spans: [[Range<Int>]]
    /// Bytes of the segment files read.
    private(set) var bytesRead: UInt64 = 0

    /// No entries (streams without any in the segments).
    init(numbers: Range<UInt32>) {
        self.numbers = numbers
        spans = []
    }

    /// Reads every segment in `folder` (``walk(_:wants:progress:_:)``), keeping
    /// the blocks of streams in `numbers`. `expectedBytes` sizes the arena (the
    /// entries' bytes, known from verification).
    static func collect(from folder: FilePath, numbers: Range<UInt32>, expectedBytes: UInt64) throws -> SegmentHarvest {
        var harvest = SegmentHarvest(numbers: numbers)
        harvest.spans = Array(repeating: [], count: numbers.count)
        harvest.arena.reserveCapacity(Int(expectedBytes))
        harvest.bytesRead = try walk(folder, wants: { numbers.contains($0) }) { stream, segment, block in
            let span = appendUnit(segment: segment, block: block, to: &harvest.arena)
            harvest.spans[Int(stream - numbers.lowerBound)].append(span)
        }
        return harvest
    }

    /// Bytes before a unit's block: its segment's number.
    static let unitPrefix = 4

    /// Appends a unit (`segment`'s number, then `block`) to `arena`; its range there.
    static func appendUnit(segment: UInt32, block: UnsafeRawBufferPointer, to arena: inout [UInt8]) -> Range<Int> {
        let start = arena.count
        withUnsafeBytes(of: segment.littleEndian) { arena.append(contentsOf: $0) }
        arena.append(contentsOf: block)
        return start..<arena.count
    }

    /// The segment number and block of the unit at `range` of `arena`.
    static func unit(_ arena: UnsafeRawBufferPointer, _ range: Range<Int>) -> (segment: UInt32, block: UnsafeRawBufferPointer) {
        (LittleEndian.load(UInt32.self, from: arena, at: range.lowerBound),
         UnsafeRawBufferPointer(rebasing: arena[(range.lowerBound + unitPrefix)..<range.upperBound]))
    }

    /// The dictionaries of the segments in `folder`, by segment number (a
    /// segment without one, or whose copies are both damaged, is left out:
    /// its blocks that need one then fail to decode, naming what is wrong).
    static func dictionaries(in folder: FilePath) -> [UInt32: CompressionDictionary] {
        var found: [UInt32: CompressionDictionary] = [:]
        for number in ((try? StorageDirectory.entries(of: folder)) ?? []).compactMap(SplitSegment.number(inFileName:)) {
            if let segment = try? SplitSegment.open(number: number, in: folder), let dictionary = segment.dictionary {
                found[number] = dictionary
            }
        }
        return found
    }

    /// A harvest of blocks already gathered: `arena` holds them, `spans` their ranges per stream of `numbers`.
    init(numbers: Range<UInt32>, arena: [UInt8], spans: [[Range<Int>]]) {
        self.numbers = numbers
        self.arena = arena
        self.spans = spans
    }

    /// Walks every segment in `folder` in order, front to back, and calls `body`
    /// with the stream number, segment number and block (header and stored bytes)
    /// of each entry whose stream `wants`; returns the bytes of the segment files walked.
    ///
    /// Each segment is mapped and walked envelope to envelope: an entry not
    /// wanted costs two loads (its stream number and length), no copy and no
    /// checksum (the verification before read and checked every entry, and the
    /// store's lock keeps the files as they were); a wanted entry has its
    /// envelope and block header checked (a damaged one is refused, naming the
    /// segment and offset). Pages already walked are dropped from the mapping as
    /// it goes, so they do not add up in memory.
    static func walk(_ folder: FilePath, wants: (UInt32) -> Bool, progress: (Int, Int) -> Void = { _, _ in },
                     _ body: (_ stream: UInt32, _ segment: UInt32, UnsafeRawBufferPointer) throws -> Void) throws -> UInt64 {
        var bytesRead: UInt64 = 0
        let names = ((try? StorageDirectory.entries(of: folder)) ?? []).compactMap(SplitSegment.number(inFileName:)).sorted()
        for (done, number) in names.enumerated() {
            progress(done, names.count)
            let path = folder.appending(SplitSegment.fileName(of: number))
            // Opened for where its entries start; they are walked through a mapping.
            guard let segment = try SplitSegment.open(number: number, in: folder) else { continue }
            let file = segment.file
            let size = Int(try file.size())
            guard size > Int(segment.entriesStart) else { continue }
            bytesRead += UInt64(size)
            let base = try file.mapReadOnly(length: size)
            defer { StorageFile.unmap(base, length: size) }
            let bytes = UnsafeRawBufferPointer(start: base, count: size)
            func damaged(_ offset: Int, _ why: String) -> RingstoreError {
                RingstoreError(.corruptData, "split segment \(path) is damaged at offset \(offset): \(why)", path: path.string, offset: UInt64(offset))
            }
            let release = 8 << 20
            var released = 0
            var offset = Int(segment.entriesStart)
            while offset < size {
                guard offset + SplitSegment.envelopeSize + StreamBlock.headerSize <= size else { throw damaged(offset, "a torn entry at the end") }
                let stream = LittleEndian.load(UInt32.self, from: bytes, at: offset + 4)
                let length = Int(LittleEndian.load(UInt32.self, from: bytes, at: offset + 16))
                let blockStart = offset + SplitSegment.envelopeSize
                guard length >= StreamBlock.headerSize, length <= size - blockStart else { throw damaged(offset, "an entry's length is invalid") }
                if wants(stream) {
                    let whole = UnsafeRawBufferPointer(rebasing: bytes[offset..<(blockStart + length)])
                    guard let envelope = SplitSegment.parseEnvelope(whole), envelope.stream == stream, envelope.blockLength == length,
                          case .success(let header) = StreamBlock.parseHeader(UnsafeRawBufferPointer(rebasing: whole[SplitSegment.envelopeSize...])),
                          header.totalLength == length
                    else { throw damaged(offset, "a damaged entry envelope or block header") }
                    try body(stream, number, UnsafeRawBufferPointer(rebasing: whole[SplitSegment.envelopeSize...]))
                }
                offset = blockStart + length
                if offset - released >= release + 4096 {
                    let upTo = (offset - 4096) & ~4095
                    StorageFile.releaseMappedPages(at: base + released, count: upTo - released)
                    released = upTo
                }
            }
        }
        progress(names.count, names.count)
        return bytesRead
    }

    /// Gives up the arena, emptied with its capacity kept, for the next range's
    /// harvest to fill (``SegmentSpill/harvest(_:expectedBytes:reusing:)``); this one is then empty.
    mutating func takeArena() -> [UInt8] {
        var taken: [UInt8] = []
        swap(&taken, &arena)
        spans = []
        taken.removeAll(keepingCapacity: true)
        return taken
    }

    /// The ranges in ``arena`` of `number`'s blocks, oldest first.
    func blocks(of number: UInt32) -> [Range<Int>] {
        guard !spans.isEmpty, numbers.contains(number) else { return [] }
        return spans[Int(number - numbers.lowerBound)]
    }

    /// Consecutive ranges of stream numbers `0..<segmentBytes.count` whose entries
    /// take at most `budget` bytes together (a stream larger than that alone gets a range of its own).
    static func ranges(segmentBytes: [UInt64], budget: UInt64) -> [Range<UInt32>] {
        var result: [Range<UInt32>] = []
        var start = 0
        var sum: UInt64 = 0
        for (i, bytes) in segmentBytes.enumerated() {
            if sum > 0 && sum + bytes > budget {
                result.append(UInt32(start)..<UInt32(i))
                start = i
                sum = 0
            }
            sum += bytes
        }
        if start < segmentBytes.count || result.isEmpty { result.append(UInt32(start)..<UInt32(segmentBytes.count)) }
        return result
    }
}
