import CLZ4
import Glibc
import SystemPackage

/// Writes the compacted store's new files under `compact.new/` with the
/// engine's own writers (``StreamFile``, ``GlobalIndex``), or, dry, only
/// counts the bytes they would take.
final class CompactionWriter {
    /// Raw bytes per block without a dictionary: the size the segment mover joins
    /// blocks to, and what one read decodes.
    static let plainBlockBytes = SplitStore.movedBlockBytes
    /// Raw bytes per block compressed against the new store's ``StreamFileDictionary``.
    ///
    /// Why smaller: `$all` reads a few events of each stream at a time, and a
    /// block is decoded from its start up to the event read (LZ4 cannot resume
    /// where it stopped), so over 10,000 streams a 64 KiB block was decoded
    /// about eight times in part. Small blocks alone lose LZ4's context (a
    /// compacted 1 M-event store over 10,000 streams: 110 MB of stream files in
    /// 64 KiB blocks, 158 MB in 4 KiB ones); against a dictionary of other
    /// streams' events 4 KiB blocks take 103 MB, and `$all` read them at
    /// 0.83-0.91 M events/s against 0.65-0.69 M (8 KiB: 100 MB, 0.77 M; 3 KiB:
    /// 105 MB, 0.82 M; docs/PERFORMANCE.md, "`$all` over compacted stores:
    /// small blocks against a dictionary").
    static let dictionaryBlockBytes = 4 << 10
    /// Raw bytes from which a block kept whole is copied byte for byte rather than
    /// rebuilt: joining it would not fill it further (at most a quarter of a block
    /// could still join it), so decompressing and compressing it again buys nothing.
    static func reuseBytes(for blockBytes: Int) -> Int { blockBytes / 4 * 3 }
    /// How many harvested blocks ahead a stream's block is asked for (``Prefetch``).
    static let lookahead = 4
    /// Bytes from which a new file's writeback is started as it is closed (a hint;
    /// the `syncfs` before the commit makes every file durable either way).
    ///
    /// Why not every file: each `sync_file_range` is a write request of its own,
    /// and on the working disk's ext4 100,000 small files (a few KiB each) cost
    /// more that way than in the one `syncfs`, which merges them: compaction of a
    /// 1,730 MiB store took 15.0 / 15.6 s starting every file's writeback and
    /// 12.7 / 13.8 s leaving it to the `syncfs` (the rewrite 8.3-8.8 s -> 6.0-6.2 s,
    /// the `syncfs` 0.3 s -> 0.9-1.0 s). A large file's one request is cheap for
    /// its bytes, and writing it back early spreads the disk's work.
    static let writebackBytes: UInt64 = 1 << 20
    let root: FilePath
    let dryRun: Bool
    let compress: Bool
    /// LZ4's speed knob for the new blocks (``LZ4Compressor``): compaction
    /// recompresses everything it keeps, so a faster setting than the engine's
    /// own pays (see ``CompactOptions/acceleration``).
    let acceleration: Int32
    /// The new store's ``StreamFileDictionary``, which the new blocks of sparse streams
    /// are compressed against (when compressing at all); each lane has its own copy
    /// (its compression state is its own).
    let dictionary: CompressionDictionary?
    /// The old store's ``StreamFileDictionary``, for its files' blocks compressed against it.
    let oldDictionary: CompressionDictionary?
    /// The store's events, against which a stream's share is reckoned (``DictionaryPolicy/denseShare``).
    let totalEvents: Int
    /// Which streams' blocks use ``dictionary``.
    let policy: DictionaryPolicy
    fileprivate(set) var blocksWritten = 0
    /// Of ``blocksWritten``, the old blocks copied byte for byte (``reuseBytes``).
    fileprivate(set) var blocksReused = 0
    /// Bytes of the new files (stream files and their indexes, copied files, the
    /// global index); dry run: the bytes they would take. Counted as written, so
    /// the summary needs no `stat` of every new file afterwards.
    fileprivate(set) var bytesWritten: UInt64 = 0
    /// Bytes of stream files and segment entries read.
    fileprivate(set) var bytesRead: UInt64 = 0
    /// Streams written into the new store's bucket files (``intoBuckets``), not files of their own.
    fileprivate(set) var streamsBucketed = 0
    /// Whether small streams go into the new store's bucket files: those whose kept
    /// history starts at version 0 (a bucket chain always does) and stays under
    /// ``SplitStore/promotedBytes`` raw bytes, as the engine's mover keeps them.
    let intoBuckets: Bool
    /// The new store's bucket files (not dry), shared by every lane (it has a lock of its own).
    var buckets: StreamBuckets?
    private var folders = Set<String>()

    init(root: FilePath, dryRun: Bool, compress: Bool, acceleration: Int32 = 1,
         dictionary: CompressionDictionary? = nil, oldDictionary: CompressionDictionary? = nil, totalEvents: Int = 0,
         policy: DictionaryPolicy = DictionaryPolicy(), intoBuckets: Bool = false, buckets: StreamBuckets? = nil) {
        self.root = root
        self.intoBuckets = intoBuckets
        self.buckets = buckets
        self.dryRun = dryRun
        self.compress = compress
        self.acceleration = acceleration
        self.dictionary = dictionary
        self.oldDictionary = oldDictionary
        self.totalEvents = totalEvents
        self.policy = policy
    }

    /// A writer of the same new store for another thread of the rewrite
    /// (``MaintenanceSession``'s lanes): its own buffers and counters, which
    /// ``absorb(_:)`` adds to this one's once that thread is done. Streams are
    /// independent files, so lanes share nothing else (two lanes may both create
    /// a sub-folder: the second finds it there).
    func lane() -> CompactionWriter {
        CompactionWriter(root: root, dryRun: dryRun, compress: compress, acceleration: acceleration,
                         dictionary: dictionary.map { CompressionDictionary(UnsafeRawBufferPointer($0.bytes)) }, oldDictionary: oldDictionary,
                         totalEvents: totalEvents, policy: policy, intoBuckets: intoBuckets, buckets: buckets)
    }

    /// Writes the new store's ``StreamFileDictionary`` (if it has one) into its
    /// `streams/` folder, which must exist; dry: counts its bytes.
    func writeDictionary() throws {
        guard let dictionary else { return }
        bytesWritten += UInt64(StreamFileDictionary.magic.count + CompressionDictionary.encodeArea(dictionary).count)
        if !dryRun { try StreamFileDictionary.write(dictionary, in: root) }
    }

    /// Adds the counters of `lane` (a ``lane()`` of this writer, finished) to this writer's.
    func absorb(_ lane: CompactionWriter) {
        blocksWritten += lane.blocksWritten
        blocksReused += lane.blocksReused
        bytesWritten += lane.bytesWritten
        bytesRead += lane.bytesRead
        streamsBucketed += lane.streamsBucketed
    }

    /// Adds the new bucket files' bytes to ``bytesWritten`` (once every lane is done).
    func countBucketFiles() {
        bytesWritten += buckets?.totalBytes ?? 0
    }

    /// One read buffer for every stream file read in turn.
    private let window = ReadWindow(bytes: 1 << 20)
    /// Where blocks are decompressed before joining (grown for a larger one).
    private let scratch = ReadWindow(bytes: 1 << 20)

    /// A stream's old file, as the rewrite knows it.
    enum OldFile {
        /// Not known: look the stream up in the store.
        case unknown
        /// The stream has no file (verified).
        case none
        /// The file at `path` (verified) holds the stream's versions below `nextVersion` and is `bytes` long.
        case at(FilePath, nextVersion: UInt64, bytes: UInt64)
    }

    /// What ``write(stream:number:from:through:notBefore:store:harvest:oldFile:)`` kept of a stream.
    struct Kept {
        /// Events written.
        var count = 0
        /// The first version written (the stream's events from here to the last are kept).
        var firstVersion: UInt64?
    }

    /// Writes `stream`'s events `[from, through]` — its file's blocks, then its
    /// split-segment entries (gathered in `harvest`) — leaving out, while
    /// `notBefore` is set, those older than it until one is not (the last one is
    /// always kept). Blocks are copied as raw payloads
    /// (``StreamBlock/rawBlock(from:)``: checksums checked, no event decoded),
    /// cut below `from`, joined to full blocks and compressed again: blocks of
    /// ``dictionaryBlockBytes`` against ``dictionary`` when there is one and the
    /// stream holds less than 1/``DictionaryPolicy/denseShare`` of the events, else of
    /// ``plainBlockBytes`` without one.
    ///
    /// The store's segment mover is stopped during a compaction, so the file and
    /// the segments do not change under it.
    ///
    /// `oldFile`: the stream's file as the verification found it, or unknown (then it is
    /// looked up in the store: a path lookup per stream, and an open of the file to learn
    /// its end, most of the work for a stream of a few events).
    func write(stream: String, number: UInt32, from: UInt64, through last: UInt64, notBefore: Int64?,
               store: EventStore, harvest: SegmentHarvest, oldFile: OldFile = .unknown) throws -> Kept {
        let file: (path: FilePath, next: UInt64, bytes: UInt64?)?
        switch oldFile {
        case .unknown:
            file = try store.split.directory.handle(for: stream, number: nil, create: false).map { handle in
                (handle.path, handle.withFile { $0.nextVersion }, nil)
            }
        case .none:
            file = nil
        case .at(let path, let next, let bytes):
            file = (path, next, bytes)
        }
        let fileNext = file?.next ?? 0
        // The same bytes whichever lane writes this stream (see ``LZ4Compressor/clearState()``).
        if compress { LZ4Compressor.clearState() }
        let sparse = compress && dictionary != nil && policy.isSparse(events: last >= from ? last - from + 1 : 0, of: totalEvents)
        var copier = RawCopier(writer: self, stream: stream, number: number, from: from, last: last, notBefore: notBefore,
                               dictionary: sparse ? dictionary : nil)
        defer { copier.closeFile() }
        if let file, fileNext > from {
            try readFileBlocks(at: file.path, size: file.bytes, stream: stream, from: from, before: fileNext, into: &copier)
        }
        // The stream's bucket chain, where it reaches further than the file (a chain the
        // file outreaches is a promoted stream's garbage, and is dropped).
        let bucketNext = store.split.buckets.nextVersion(of: number)
        if bucketNext > max(from, fileNext) {
            let floor = max(from, fileNext)
            for entry in try store.split.buckets.entries(of: number, from: floor) {
                try entry.block.withUnsafeBytes { bytes in
                    try take(entry: bytes, header: entry.header, dictionary: entry.dictionary, floor: floor, stream: stream,
                             kind: "bucket file \(entry.path) at offset \(entry.offset)", into: &copier)
                }
            }
        }
        let floor = max(from, fileNext, bucketNext)
        let blocks = harvest.blocks(of: number)
        for (i, range) in blocks.enumerated() {
            try harvest.arena.withUnsafeBytes { arena in
                // The arena holds the blocks in the order the walk met them, so each stream's
                // lie scattered in it: ask for a block a few ahead before this one is worked on.
                if i + Self.lookahead < blocks.count {
                    let ahead = blocks[i + Self.lookahead]
                    Prefetch.bytes(arena, at: ahead.lowerBound, count: min(ahead.count, 1 << 10))
                }
                let (segment, bytes) = SegmentHarvest.unit(arena, range)
                guard case .success(let header) = StreamBlock.parseHeader(bytes) else { return }
                // Blocks compressed against their segment's dictionary decode with it (never copied as they are).
                try take(entry: bytes, header: header, dictionary: header.dictionary ? harvest.dictionaries[segment] : nil,
                         floor: floor, stream: stream, kind: "a split-segment entry", into: &copier)
            }
        }
        try copier.finish()
        return Kept(count: copier.kept, firstVersion: copier.firstKept)
    }

    /// Hands `copier` the versions from `floor` on of one entry (a segment's or a bucket
    /// chain's: envelope gone, block header already parsed), `kind` naming it in errors.
    private func take(entry bytes: UnsafeRawBufferPointer, header: StreamBlock.Header, dictionary: CompressionDictionary?, floor: UInt64,
                      stream: String, kind: @autoclosure () -> String, into copier: inout RawCopier) throws {
        guard header.firstVersion + UInt64(header.count) > floor else { return }
        // A full-size entry kept whole (moved in from a large append) is copied as it is.
        if header.firstVersion >= floor, !header.dictionary, try copier.reuse(header: header, block: bytes) {
            bytesRead += UInt64(bytes.count)
            return
        }
        // The common case: the whole block is kept as it is, decoded straight into the block being built.
        if header.firstVersion >= floor, copier.takesWhole(header) {
            bytesRead += UInt64(bytes.count)
            if let why = try copier.addWhole(header: header, stored: UnsafeRawBufferPointer(rebasing: bytes[StreamBlock.headerSize...]),
                                             dictionary: dictionary, scratch: scratch) {
                throw RingstoreError(.corruptData, "\(kind()) of stream \"\(stream.prefix(80))\" (version \(header.firstVersion)) is damaged: \(why)",
                                     stream: stream)
            }
            return
        }
        switch StreamBlock.rawBlock(from: Array(bytes), dictionary: dictionary) {
        case .success(let block):
            bytesRead += UInt64(bytes.count)
            guard let kept = block.dropping(below: floor), kept.count > 0 else { return }
            try copier.add(kept)
        case .failure(let error):
            throw RingstoreError(.corruptData, "\(kind()) of stream \"\(stream.prefix(80))\" (version \(header.firstVersion)) is damaged: \(error)",
                                 stream: stream)
        }
    }

    /// Hands `copier` each block of the stream file at `path` that holds versions in
    /// `[from, before)`: a full-size one kept whole as it is (``RawCopier/reuse(header:block:)``),
    /// any other as a raw block, cut below `from` (blocks wholly below `from` are not decoded).
    /// `size`: the file's size if known (verified; spares an `fstat`).
    private func readFileBlocks(at path: FilePath, size: UInt64?, stream: String, from: UInt64, before: UInt64,
                                into copier: inout RawCopier) throws {
        let file = try StorageFile.open(path)
        defer { file.close() }
        var reader = try SequentialReader(file: file, window: window, size: size)
        defer { bytesRead += reader.bytesRead }
        var offset = StreamFile.headerLength(nameBytes: stream.utf8.count)
        func damaged(_ why: String) -> RingstoreError {
            RingstoreError(.corruptData, "stream file \(path) is damaged at offset \(offset): \(why)", stream: stream, path: path.string, offset: offset)
        }
        while offset < reader.size {
            guard let head = try reader.bytes(at: offset, count: StreamBlock.headerSize) else { throw damaged("a torn block header") }
            guard case .success(let header) = StreamBlock.parseHeader(head) else { throw damaged("a damaged block header") }
            if header.firstVersion >= before { break }
            defer { offset += UInt64(header.totalLength) }
            if header.firstVersion + UInt64(header.count) <= from { continue }
            guard let bytes = try reader.bytes(at: offset, count: header.totalLength) else { throw damaged("a torn block") }
            // A failed payload checksum falls through to the rebuild, which names it.
            if header.firstVersion >= from, try copier.reuse(header: header, block: bytes) { continue }
            switch StreamBlock.rawBlock(from: Array(bytes), dictionary: oldDictionary) {
            case .success(let block):
                guard let kept = block.dropping(below: from), kept.count > 0 else { continue }
                try copier.add(kept)
            case .failure(let error): throw damaged("\(error)")
            }
        }
    }

    /// Joins one stream's raw blocks into full-size blocks, applying `maxAge`, and writes them;
    /// full-size blocks kept whole go through as they are.
    private struct RawCopier {
        let writer: CompactionWriter
        let stream: String
        let number: UInt32
        let from: UInt64
        let last: UInt64
        let notBefore: Int64?
        /// What this stream's new blocks are compressed against (nil: none), and their raw size.
        let dictionary: CompressionDictionary?
        var blockBytes: Int
        /// While true the blocks are held in ``ready`` rather than written into a file: the
        /// stream may yet go into the new store's buckets (``CompactionWriter/intoBuckets``).
        /// It ends once they pass ``SplitStore/promotedBytes``.
        var holding: Bool
        var heldRawBytes = 0
        var started: Bool
        /// While nothing is young enough: the last block seen, whose last event is kept if nothing ever is.
        var skipped: StreamBlock.RawBlock?
        var current = StreamBlock.RawBlock()
        var ready: [StreamBlock.Appended] = []
        var file: StreamFile?
        var kept = 0
        var firstKept: UInt64?

        init(writer: CompactionWriter, stream: String, number: UInt32, from: UInt64, last: UInt64, notBefore: Int64?,
             dictionary: CompressionDictionary?) {
            self.writer = writer
            self.dictionary = dictionary
            holding = writer.intoBuckets && from == 0
            // A bucket's blocks are the engine's moved blocks (64 KiB): a read walks a chain entry by
            // entry, and LZ4 gains more from a stream's 64 KiB than from a dictionary and 4 KiB. The
            // same store of 2 M events over 10,000 streams (`ringstore demo --max-batch 1`, 336 MiB)
            // compacted to 309 MiB this way, to 338 MiB with 4 KiB blocks against the dictionary in
            // buckets, and to 332 MiB with a file per stream (4 KiB blocks against the dictionary).
            blockBytes = dictionary == nil || holding ? CompactionWriter.plainBlockBytes : CompactionWriter.dictionaryBlockBytes
            self.stream = stream
            self.number = number
            self.from = from
            self.last = last
            self.notBefore = notBefore
            self.started = notBefore == nil
        }

        mutating func add(_ input: StreamBlock.RawBlock) throws {
            var block = input
            if block.firstVersion + UInt64(block.count) > last + 1 {
                // Past the last acknowledged version (cannot happen in a closed store): cut.
                guard block.firstVersion <= last, let offsets = StreamBlock.entryOffsets(block.raw, count: block.count) else { return }
                let keep = Int(last + 1 - block.firstVersion)
                block = StreamBlock.RawBlock(raw: Array(block.raw[..<offsets[keep]]), firstVersion: block.firstVersion,
                                             firstPosition: block.firstPosition, count: keep)
            }
            if !started, let notBefore {
                guard let offsets = StreamBlock.entryOffsets(block.raw, count: block.count) else { return }
                let young = block.raw.withUnsafeBytes { r in
                    offsets.dropLast().firstIndex { Int64(littleEndian: r.loadUnaligned(fromByteOffset: $0 + 28, as: Int64.self)) >= notBefore }
                }
                guard let young else {
                    skipped = block
                    return
                }
                started = true
                guard let rest = block.dropping(below: block.firstVersion + UInt64(young)) else { return }
                block = rest
            }
            try take(block)
        }

        /// Takes an old block (`block`: header and stored bytes; the header already
        /// parsed and checked) byte for byte, when it is kept whole (``takesWhole(_:)``;
        /// the caller has checked it starts at or after the first version kept), holds
        /// at least ``CompactionWriter/reuseBytes(for:)`` of a block, and would not be joined to
        /// the block being built anyway (that one is closed first, as joining would).
        /// Its payload checksum is checked here; the entries were walked by the
        /// verification before the rewrite. Returns false when the block is to be
        /// rebuilt instead (the rebuild then reports damage, with its offset).
        ///
        /// Why this is safe: a block's bytes say nothing about where it lies in its file,
        /// so the same block under a new file header is the same versions, positions and
        /// events; the new file's index is written from the offsets it gets here.
        ///
        /// With a dictionary only blocks compressed against the same one are copied
        /// (the old store's, when compaction sampled the same bytes again); without,
        /// only blocks compressed against none.
        mutating func reuse(header: StreamBlock.Header, block: UnsafeRawBufferPointer) throws -> Bool {
            let sameDictionary = header.dictionary
                ? header.dictionaryID != 0 && header.dictionaryID == dictionary?.id && header.rawLength <= blockBytes
                : dictionary == nil
            guard !holding, sameDictionary, header.rawLength >= CompactionWriter.reuseBytes(for: blockBytes), takesWhole(header),
                  current.count == 0 || current.raw.count + header.rawLength > blockBytes,
                  writer.compress || !header.compressed,
                  block.count == header.totalLength,
                  CRC32C.checksum(UnsafeRawBufferPointer(rebasing: block[StreamBlock.headerSize...])) == header.payloadCRC
            else { return false }
            if current.count > 0 {
                ready.append(.built(current))
                current = StreamBlock.RawBlock()
            }
            if firstKept == nil { firstKept = header.firstVersion }
            kept += header.count
            writer.blocksReused += 1
            ready.append(.copied(bytes: Array(block), firstVersion: header.firstVersion, count: header.count))
            if ready.count >= 16 { try flush() }
            return true
        }

        /// Whether a block of `header` can go in whole (``addWhole(header:stored:scratch:)``):
        /// nothing to cut by age or past the last version.
        func takesWhole(_ header: StreamBlock.Header) -> Bool {
            started && header.firstVersion + UInt64(header.count) <= last + 1
                && (current.count == 0 || header.firstVersion == current.firstVersion + UInt64(current.count))
        }

        /// Adds a whole encoded block: payload checksum checked, decompressed into
        /// `scratch`, entries walked, then its raw bytes appended to the block being
        /// built (no array per block). Returns what is wrong with it, or nil.
        /// `dictionary`: that of the split segment the block came from, for a block compressed against it.
        mutating func addWhole(header: StreamBlock.Header, stored: UnsafeRawBufferPointer, dictionary: CompressionDictionary? = nil,
                               scratch: ReadWindow) throws -> String? {
            guard stored.count == header.storedLength, CRC32C.checksum(stored) == header.payloadCRC else { return "payload checksum mismatch" }
            let raw: UnsafeRawBufferPointer
            if header.compressed {
                scratch.grow(to: header.rawLength)
                if let failure = StreamBlock.decompress(stored, header: header, dictionary: dictionary, into: scratch.bytes) { return "\(failure)" }
                raw = UnsafeRawBufferPointer(rebasing: scratch.bytes[0..<header.rawLength])
            } else {
                raw = stored
            }
            var offset = 0
            for _ in 0..<header.count {
                guard offset + StreamBlock.entryHeaderSize <= raw.count else { return "an entry runs past the payload" }
                let length = Int(LittleEndian.load(UInt32.self, from: raw, at: offset))
                guard length >= StreamBlock.entryHeaderSize, length <= raw.count - offset else { return "an entry's length is invalid" }
                offset += length
            }
            guard offset == raw.count else { return "the payload has bytes after its last entry" }
            if firstKept == nil { firstKept = header.firstVersion }
            kept += header.count
            try join(raw, firstVersion: header.firstVersion, firstPosition: header.firstPosition, count: header.count)
            return nil
        }

        private mutating func take(_ block: StreamBlock.RawBlock) throws {
            guard block.count > 0 else { return }
            if firstKept == nil { firstKept = block.firstVersion }
            kept += block.count
            try block.raw.withUnsafeBytes {
                try join($0, firstVersion: block.firstVersion, firstPosition: block.firstPosition, count: block.count)
            }
        }

        /// Appends `count` whole raw entries (checksummed, cut by ``StreamBlock/entryOffsets(_:count:)`` or walked) to
        /// the block being built, closing it before any entry that would take it past
        /// the writer's block size: an old block or segment entry larger than that
        /// (a 64 KiB block where the new ones are 4 KiB) is cut between its entries.
        private mutating func join(_ raw: UnsafeRawBufferPointer, firstVersion: UInt64, firstPosition: UInt64, count: Int) throws {
            let limit = blockBytes
            var offset = 0
            for i in 0..<count {
                let whole = i == 0 && (current.count == 0 || current.raw.count + raw.count <= limit) && raw.count <= limit
                // Each entry starts with its length (u32) and position (u64); `LittleEndian`
                // checks the bounds, and a length that does not fit is damage.
                let length = whole ? raw.count : Int(LittleEndian.load(UInt32.self, from: raw, at: offset))
                guard whole || (length >= StreamBlock.entryHeaderSize && length <= raw.count - offset) else {
                    throw RingstoreError(.corruptData, "stream \"\(stream.prefix(80))\": entry \(i) of the block of version \(firstVersion) has an invalid length",
                                         stream: stream)
                }
                if current.count > 0 && current.raw.count + length > limit {
                    heldRawBytes += current.raw.count
                    ready.append(.built(current))
                    current = StreamBlock.RawBlock()
                    if ready.count >= 16 { try flush() }
                }
                if current.count == 0 {
                    current.firstVersion = firstVersion + UInt64(i)
                    current.firstPosition = i == 0 ? firstPosition : LittleEndian.load(UInt64.self, from: raw, at: offset + 4)
                    current.raw.reserveCapacity(limit + (16 << 10))
                }
                current.raw.append(contentsOf: UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + length)]))
                if whole {
                    current.count += count  // it fits: every entry at once
                    return
                }
                current.count += 1
                offset += length
            }
        }

        mutating func finish() throws {
            if !started, let skipped, let anchor = skipped.dropping(below: skipped.firstVersion + UInt64(skipped.count - 1)) {
                started = true
                try take(anchor)  // nothing young enough: keep the last event as the version anchor
            }
            if current.count > 0 {
                heldRawBytes += current.raw.count
                ready.append(.built(current))
            }
            current = StreamBlock.RawBlock()
            if holding, kept > 0, firstKept == 0, UInt64(heldRawBytes) < SplitStore.promotedBytes {
                try appendToBucket()
                return
            }
            holding = false
            try flush()
            if writer.dryRun, kept > 0 { writer.bytesWritten += StreamFile.headerLength(nameBytes: stream.utf8.count) }
        }

        /// Writes the held blocks (the stream's whole kept history, from version 0) as the
        /// stream's chain in the new store's bucket files; dry: counts the bytes they would take.
        private mutating func appendToBucket() throws {
            let blocks: [StreamBlock.RawBlock] = ready.compactMap { if case .built(let block) = $0 { block } else { nil } }
            precondition(blocks.count == ready.count, "a held stream's blocks are built, never copied")
            writer.blocksWritten += blocks.count
            writer.streamsBucketed += 1
            ready.removeAll()
            if let buckets = writer.buckets {
                let dictionary = writer.dictionary
                try buckets.append(stream: number, blocks: blocks, compress: writer.compress) { dictionary }
            } else {
                var output: [UInt8] = []
                for block in blocks { StreamBlock.encode(block, compress: writer.compress, dictionary: writer.dictionary, into: &output) }
                writer.bytesWritten += UInt64(output.count + blocks.count * SplitSegment.envelopeSize)
            }
        }

        /// Closes the new file, starting its writeback first if it holds at least
        /// ``CompactionWriter/writebackBytes``: the disk writes it while the next
        /// streams are built, and the one `syncfs` at the end finds less left.
        mutating func closeFile() {
            if let file {
                writer.bytesWritten += file.storedBytes
                if file.dataEnd >= CompactionWriter.writebackBytes { file.data.startWriteback(from: 0, count: file.dataEnd) }
            }
            file?.close()
            file = nil
        }

        private mutating func flush() throws {
            guard !ready.isEmpty else { return }
            if holding {
                guard UInt64(heldRawBytes) >= SplitStore.promotedBytes || firstKept.map({ $0 > 0 }) == true else { return }
                holding = false  // too large for a bucket, or not from version 0: a file of its own
            }
            writer.blocksWritten += ready.count
            if writer.dryRun {
                var output: [UInt8] = []
                for block in ready {
                    block.encode(compress: writer.compress, acceleration: writer.acceleration, dictionary: dictionary, into: &output)
                }
                writer.bytesWritten += UInt64(output.count)
            } else {
                if file == nil { file = try writer.create(stream) }
                try file!.append(sources: ready, compress: writer.compress, acceleration: writer.acceleration, dictionary: dictionary)
            }
            ready.removeAll(keepingCapacity: true)
        }
    }

    /// Creates the new file of `stream` at its usual path (the next free collision slot).
    fileprivate func create(_ stream: String) throws -> StreamFile {
        var probe = 0
        while true {
            let (folder, name) = StreamNaming.location(stream, probe: probe)
            let folderPath = root.appending(StreamNaming.folder).appending(folder)
            if folders.insert(folder).inserted { try StorageDirectory.create(folderPath) }
            // Created exclusively: a name taken by a colliding stream fails with EEXIST,
            // so no lookup is needed first (the new folder is almost always free there).
            do {
                // The header goes with the first blocks, in one write (the file is always appended to at once).
                return try StreamFile.create(at: folderPath.appending(name).string, stream: stream, deferHeader: true)
            } catch let error as RingstoreError where (error.cause as? Errno) == .fileExists {
                probe += 1
            }
        }
    }

    /// Copies a file byte for byte to the same place under the new root (`--skip-damaged`).
    func copy(from source: FilePath, relative: String) throws {
        bytesWritten += fileSize(source)
        guard !dryRun else { return }
        let target = root.appending(relative)
        let folder = target.removingLastComponent()
        if !StorageDirectory.isDirectory(folder) { try StorageDirectory.create(folder) }
        let input = try StorageFile.open(source)
        defer { input.close() }
        let output = try StorageFile.open(target, create: true)
        defer { output.close() }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var offset: UInt64 = 0
        while true {
            let got = try buffer.withUnsafeMutableBytes { try input.read(into: $0, at: offset) }
            if got == 0 { break }
            try buffer.withUnsafeBytes { try output.write(UnsafeRawBufferPointer(rebasing: $0[0..<got]), at: offset) }
            offset += UInt64(got)
            bytesRead += UInt64(got)
        }
    }

    /// Which versions of one stream the new store holds (by catalog number).
    struct KeptVersions {
        var from: UInt64 = 1
        var through: UInt64 = 0
        /// The stream's old entries are all kept (its damaged file is carried over as it was).
        var verbatim = false

        static let none = KeptVersions()
        static let all = KeptVersions(from: 0, through: .max, verbatim: true)
    }

    /// Writes the new global index: the old one's entries, in their order, of
    /// the versions each stream keeps, copied record for record (checksum
    /// checked). One sequential pass through both files, no table of entries.
    /// Returns the entries written, and of those the ones of streams not kept verbatim.
    func writeGlobalIndex(from old: FilePath, keep: [KeptVersions]) throws -> (written: Int, rewritten: Int) {
        let size = UInt64(GlobalIndex.entrySize)
        let input = try StorageFile.open(old)
        defer { input.close() }
        let total = try input.size() / size
        let output = dryRun ? nil : try StorageFile.open(root.appending(GlobalIndex.fileName), create: true, exclusive: true)
        defer { output?.close() }
        let chunkEntries = (4 << 20) / GlobalIndex.entrySize
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkEntries * GlobalIndex.entrySize, alignment: 16)
        defer { chunk.deallocate() }
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkEntries * GlobalIndex.entrySize, alignment: 16)
        defer { out.deallocate() }
        var written = 0
        var rewritten = 0
        var outputOffset: UInt64 = 0
        var index: UInt64 = 0
        while index < total {
            let count = Int(min(UInt64(chunkEntries), total - index))
            let wanted = count * GlobalIndex.entrySize
            var got = 0
            while got < wanted {
                let n = try input.read(into: UnsafeMutableRawBufferPointer(rebasing: chunk[got..<wanted]), at: index * size + UInt64(got))
                if n == 0 { break }
                got += n
            }
            bytesRead += UInt64(got)
            guard got == wanted else {
                throw RingstoreError(.ioError, "the global index \(old) ended while it was read", path: old.string)
            }
            var used = 0
            for i in 0..<count {
                let record = UnsafeRawBufferPointer(rebasing: chunk[(i * GlobalIndex.entrySize)..<((i + 1) * GlobalIndex.entrySize)])
                guard let entry = GlobalIndex.decode(record) else {
                    throw RingstoreError(.corruptData, "global index entry \(index + UInt64(i)) is damaged (checksum mismatch)",
                                         path: old.string, offset: (index + UInt64(i)) * size)
                }
                guard Int(entry.stream) < keep.count else { continue }
                let kept = keep[Int(entry.stream)]
                guard entry.version >= kept.from, entry.version <= kept.through else { continue }
                UnsafeMutableRawBufferPointer(rebasing: out[used..<(used + GlobalIndex.entrySize)]).copyMemory(from: record)
                used += GlobalIndex.entrySize
                written += 1
                if !kept.verbatim { rewritten += 1 }
            }
            if let output, used > 0 { try output.write(UnsafeRawBufferPointer(rebasing: out[0..<used]), at: outputOffset) }
            outputOffset += UInt64(used)
            index += UInt64(count)
        }
        bytesWritten += outputOffset
        return (written, rewritten)
    }
}

/// The size of a file, 0 if it cannot be read.
func fileSize(_ path: FilePath) -> UInt64 {
    var info = stat()
    return stat(path.string, &info) == 0 ? UInt64(info.st_size) : 0
}

extension StoreVerifier {
    /// Bytes of the files compaction rewrites, and of the whole store.
    func sizes() -> (rewritable: UInt64, total: UInt64) {
        var rewritable: UInt64 = fileSize(directory.appending(GlobalIndex.fileName))
        for folder in [StreamNaming.folder, "split"] {
            let root = directory.appending(folder)
            for entry in (try? StorageDirectory.entries(of: root)) ?? [] where entry != "." && entry != ".." {
                let path = root.appending(entry)
                if StorageDirectory.isDirectory(path) {
                    for name in (try? StorageDirectory.entries(of: path)) ?? [] where name != "." && name != ".." {
                        rewritable += fileSize(path.appending(name))
                    }
                } else {
                    rewritable += fileSize(path)
                }
            }
        }
        let kept = fileSize(directory.appending(JournalVerifier.fileName)) + fileSize(directory.appending(StreamCatalog.fileName))
        return (rewritable, rewritable + kept)
    }
}
