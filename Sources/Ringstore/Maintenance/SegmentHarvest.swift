import SystemPackage

/// The split-segment entries of a range of streams, gathered by one
/// sequential pass over every segment.
///
/// Why: a stream's entries are chained newest to oldest across the segments,
/// and following 100,000 chains costs one small random read per entry (millions
/// of `pread`s). Compaction instead takes the streams in ranges of catalog
/// numbers whose entries fit a memory budget (``ranges(segmentBytes:budget:)``),
/// reads the segments front to back once per range and keeps only that range's
/// blocks. Segments are written in journal order, so each stream's entries
/// arrive oldest first.
struct SegmentHarvest {
    let numbers: Range<UInt32>
    /// Whole blocks (header and stored bytes), back to back.
    private(set) var arena: [UInt8] = []
    /// Per stream of `numbers` (by `number - numbers.lowerBound`): its blocks' ranges in `arena`, oldest first.
    private var spans: [[Range<Int>]]
    /// Bytes of the segment files read.
    private(set) var bytesRead: UInt64 = 0

    /// No entries (streams without any in the segments).
    init(numbers: Range<UInt32>) {
        self.numbers = numbers
        spans = []
    }

    /// Reads every segment in `folder`, keeping the blocks of streams in `numbers`.
    /// `expectedBytes` sizes the arena (the entries' bytes, known from verification).
    static func collect(from folder: FilePath, numbers: Range<UInt32>, expectedBytes: UInt64) throws -> SegmentHarvest {
        var harvest = SegmentHarvest(numbers: numbers)
        harvest.spans = Array(repeating: [], count: numbers.count)
        harvest.arena.reserveCapacity(Int(expectedBytes))
        let names = ((try? StorageDirectory.entries(of: folder)) ?? []).compactMap(SplitSegment.number(inFileName:)).sorted()
        for number in names {
            guard let segment = try SplitSegment.open(number: number, in: folder) else { continue }
            harvest.bytesRead += try segment.file.size()
            _ = try segment.walk(checkingPayloads: false, chunkBytes: 4 << 20) { visit, block in
                // Damage was refused by the verification before; the blocks' checksums are checked when decoded.
                guard case .entry(let offset, let envelope, _, _) = visit else {
                    throw segment.damaged(at: 0, "it has bytes that are no entry")
                }
                guard numbers.contains(envelope.stream) else { return true }
                guard block.count == envelope.blockLength else { throw segment.damaged(at: offset, "entry runs past the end of the file") }
                let start = harvest.arena.count
                harvest.arena.append(contentsOf: block)
                harvest.spans[Int(envelope.stream - numbers.lowerBound)].append(start..<harvest.arena.count)
                return true
            }
        }
        return harvest
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
