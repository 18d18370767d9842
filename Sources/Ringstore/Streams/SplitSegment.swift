import SystemPackage

/// One split segment: an append-only file of stream blocks from many streams,
/// written sequentially by the splitter (see ``SplitSegments`` for why).
///
/// File layout (little-endian):
///
///     offset size  field
///      0     8     magic "RSSEG001"
///      8     4     format version (2; see below for 1)
///     12     4     segment number
///     16     4     length of the dictionary area
///     20     4     CRC32C of bytes [0, 20)
///     24     …     the dictionary area: the segment's compression dictionary
///                  (``CompressionDictionary``) twice, each copy `[length u32]
///                  [CRC32C of length and bytes u32][bytes]` padded to 8 bytes
///                  (length 0 when the segment has none); a damaged area costs
///                  only the entries compressed against it
///      …     …     entries, back to back
///
/// Version 1 (no dictionary): bytes [16, 20) are the CRC32C of [0, 16), [20,
/// 24) are reserved, and the entries start at 24.
///
/// Entry: a 32-byte envelope, then one ``StreamBlock`` (which carries its own
/// first version, first journal position, header CRC and payload CRC):
///
///     offset size  field
///      0     4     magic "RSG1"
///      4     4     stream number (the catalog's)
///      8     4     segment of the stream's previous entry (0xFFFFFFFF: none)
///     12     4     offset of the stream's previous entry
///     16     4     block length in bytes (the block follows the envelope)
///     20     4     reserved
///     24     4     reserved
///     28     4     CRC32C of bytes [0, 28)
///
/// The previous-entry link chains each stream's entries newest to oldest, so
/// the store keeps only each stream's newest entry in memory (``SegmentChains``).
///
/// Not thread-safe for appends: ``SplitSegments`` serialises them. Reads
/// (`pread`) may run on any thread at any time: bytes below ``end`` never
/// change until the segment is deleted.
final class SplitSegment: @unchecked Sendable {
    // @unchecked Sendable: `end`, `syncedEnd`, `syncFailed` and `writeback` change
    // only under the lock of the owning `SplitSegments`; everything else is immutable.

    static let headerSize = 24
    static let envelopeSize = 32
    static let formatVersion: UInt32 = 2
    /// Segments of this version have no dictionary area: entries start after the header.
    static let formatVersionWithoutDictionary: UInt32 = 1
    static let fileMagic: [UInt8] = Array("RSSEG001".utf8)
    static let envelopeMagic: UInt32 = 0x3147_5352  // "RSG1"
    /// A link to no entry.
    static let noSegment = UInt32.max

    /// Where an entry starts: segment number and byte offset.
    struct Link: Hashable, Sendable, Comparable {
        var segment: UInt32
        var offset: UInt32

        static let none = Link(segment: SplitSegment.noSegment, offset: 0)
        var isNone: Bool { segment == SplitSegment.noSegment }

        static func < (a: Link, b: Link) -> Bool { (a.segment, a.offset) < (b.segment, b.offset) }
    }

    /// A parsed entry envelope.
    struct Envelope: Equatable, Sendable {
        var stream: UInt32
        var previous: Link
        var blockLength: Int
    }

    let number: UInt32
    let path: FilePath
    /// What the segment's small entries were compressed against (nil: none, or damaged).
    let dictionary: CompressionDictionary?
    /// File offsets of the copies of the dictionary found damaged when the
    /// segment was opened (see ``CompressionDictionary``); both: it is lost, and
    /// the entries compressed against it do not decode.
    let damagedDictionaryCopies: [UInt64]
    /// Where the first entry starts: after the header and the dictionary area.
    let entriesStart: UInt64
    /// Owned by the segment and closed by its `deinit`, never by a user: a
    /// second close of the number could close another store's file.
    let file: StorageFile
    /// End of the entries written (the file may be longer after a failed write).
    var end: UInt64
    /// End of the entries known durable.
    var syncedEnd: UInt64
    /// A sync failed: the bytes after `syncedEnd` must be written again before the next one counts.
    var syncFailed = false
    /// Starts writing entries back as they accumulate, so a checkpoint's sync finds few left.
    private var writeback: SequentialWriteback

    private init(number: UInt32, path: FilePath, file: StorageFile, dictionary: CompressionDictionary?, damagedDictionaryCopies: [UInt64],
                 entriesStart: UInt64, end: UInt64) {
        self.number = number
        self.path = path
        self.file = file
        self.dictionary = dictionary
        self.damagedDictionaryCopies = damagedDictionaryCopies
        self.entriesStart = entriesStart
        self.end = end
        self.syncedEnd = end
        self.writeback = SequentialWriteback(from: end)
    }

    deinit { file.close() }

    /// The file name of segment `number`: 8 hex digits, so names sort by number.
    static func fileName(of number: UInt32) -> String {
        let hex = String(number, radix: 16)
        return String(repeating: "0", count: max(0, 8 - hex.count)) + hex + ".seg"
    }

    /// The segment number a file name stands for, or nil if it is not a segment's name.
    static func number(inFileName name: String) -> UInt32? {
        guard name.hasSuffix(".seg"), name.utf8.count == 12 else { return nil }
        return UInt32(name.prefix(8), radix: 16)
    }

    // MARK: - Creating and opening

    /// Creates segment `number` in `folder` with its header and `dictionary`
    /// written (not synced: the checkpoint that first relies on it syncs it and the folder).
    static func create(number: UInt32, in folder: FilePath, dictionary: CompressionDictionary? = nil) throws -> SplitSegment {
        let path = folder.appending(fileName(of: number))
        let file = try StorageFile.open(path, create: true, exclusive: true)
        let area = CompressionDictionary.encodeArea(dictionary)
        var header = fileMagic
        LittleEndian.append(formatVersion, to: &header)
        LittleEndian.append(number, to: &header)
        LittleEndian.append(UInt32(area.count), to: &header)
        LittleEndian.append(CRC32C.checksum(header), to: &header)
        header += area
        do {
            try header.withUnsafeBytes { try file.write($0, at: 0) }
        } catch {
            file.close()
            StorageDirectory.remove(path)
            throw error
        }
        let segment = SplitSegment(number: number, path: path, file: file, dictionary: dictionary, damagedDictionaryCopies: [],
                                   entriesStart: UInt64(header.count), end: UInt64(header.count))
        segment.syncedEnd = 0
        return segment
    }

    /// Opens segment `number`, checks its header and reads its dictionary;
    /// `end` is set to where the entries start (the caller walks them). A file
    /// whose header never reached the disk is reported as `nil` (it held
    /// nothing). A damaged dictionary area is no reason to refuse the segment:
    /// its entries are still walked, and those compressed against the
    /// dictionary report the damage when decoded (``damagedDictionaryCopies``).
    static func open(number: UInt32, in folder: FilePath) throws -> SplitSegment? {
        let path = folder.appending(fileName(of: number))
        let file = try StorageFile.open(path)
        var header = [UInt8](repeating: 0, count: headerSize)
        let got: Int
        do { got = try header.withUnsafeMutableBytes { try file.read(into: $0, at: 0) } } catch { file.close(); throw error }
        if header[..<got].allSatisfy({ $0 == 0 }) {
            file.close()
            return nil
        }
        func load(_ at: Int) -> UInt32 { LittleEndian.load(UInt32.self, from: header, at: at) }
        let checked = got == headerSize && Array(header[0..<8]) == fileMagic && load(12) == number
        if checked, load(8) == formatVersionWithoutDictionary, load(16) == CRC32C.checksum(Array(header[0..<16])) {
            return SplitSegment(number: number, path: path, file: file, dictionary: nil, damagedDictionaryCopies: [],
                                entriesStart: UInt64(headerSize), end: UInt64(headerSize))
        }
        let areaLength = Int(load(16))
        guard checked, load(8) == formatVersion, load(20) == CRC32C.checksum(Array(header[0..<20])),
              areaLength <= CompressionDictionary.maxAreaLength, areaLength % 16 == 0, areaLength >= 16 else {
            file.close()
            throw RingstoreError(.corruptData, "split segment \(path) has a damaged header", path: path.string, offset: 0)
        }
        var area = [UInt8](repeating: 0, count: areaLength)
        let read: Int
        do { read = try area.withUnsafeMutableBytes { try file.read(into: $0, at: UInt64(headerSize)) } } catch { file.close(); throw error }
        let start = UInt64(headerSize + areaLength)
        // A short area is a torn creation (nothing after it) or a cut file: both copies count as damaged.
        let reading = read == areaLength ? area.withUnsafeBytes { CompressionDictionary.parseArea($0) }
            : CompressionDictionary.AreaReading(dictionary: nil, damagedCopies: [0, areaLength / 2])
        return SplitSegment(number: number, path: path, file: file, dictionary: reading.dictionary,
                            damagedDictionaryCopies: reading.damagedCopies.map { UInt64(headerSize + $0) },
                            entriesStart: start, end: start)
    }

    // MARK: - Envelopes

    static func encodeEnvelope(_ envelope: Envelope, into output: inout [UInt8]) {
        let start = output.count
        output.append(contentsOf: repeatElement(0, count: envelopeSize))
        output.withUnsafeMutableBytes { o in
            let e = UnsafeMutableRawBufferPointer(rebasing: o[start...])
            LittleEndian.store(envelopeMagic, into: e, at: 0)
            LittleEndian.store(envelope.stream, into: e, at: 4)
            LittleEndian.store(envelope.previous.segment, into: e, at: 8)
            LittleEndian.store(envelope.previous.offset, into: e, at: 12)
            LittleEndian.store(UInt32(envelope.blockLength), into: e, at: 16)
            LittleEndian.store(CRC32C.checksum(UnsafeRawBufferPointer(rebasing: e[0..<28])), into: e, at: 28)
        }
    }

    /// Parses an envelope; nil if the bytes are not a whole, intact one.
    static func parseEnvelope(_ bytes: UnsafeRawBufferPointer) -> Envelope? {
        guard bytes.count >= envelopeSize,
              LittleEndian.load(UInt32.self, from: bytes, at: 0) == envelopeMagic,
              LittleEndian.load(UInt32.self, from: bytes, at: 28)
                == CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<28]))
        else { return nil }
        let length = Int(LittleEndian.load(UInt32.self, from: bytes, at: 16))
        guard length >= StreamBlock.headerSize, length <= StreamBlock.headerSize + StreamBlock.decodeLimit + (StreamBlock.decodeLimit >> 7) else { return nil }
        return Envelope(
            stream: LittleEndian.load(UInt32.self, from: bytes, at: 4),
            previous: Link(segment: LittleEndian.load(UInt32.self, from: bytes, at: 8),
                           offset: LittleEndian.load(UInt32.self, from: bytes, at: 12)),
            blockLength: length)
    }

    // MARK: - Writing

    /// The oldest ranges whose writeback this segment started and nobody has
    /// waited for, past the in-flight allowance (see `SequentialWriteback`):
    /// read under the owner's lock, waited for outside it
    /// (``StorageFile/finishWriteback(from:count:)`` on ``file``, which touches no state).
    var unfinishedWriteback: Range<UInt64>? { writeback.unfinished }

    /// Notes that everything before `offset` reached the device (under the owner's lock).
    func writebackFinished(upTo offset: UInt64) {
        writeback.finished(upTo: offset)
    }

    /// Writes `bytes` (whole entries) at the end; returns the offset they start at.
    /// `startingWriteback`: false when the owner paces the file's writeback
    /// itself (the bucket files, paced together: ``BucketWritebackPace``).
    func append(_ bytes: [UInt8], startingWriteback: Bool = true) throws -> UInt64 {
        let offset = end
        try write(bytes, at: offset)
        noteWritten(upTo: end + UInt64(bytes.count), startingWriteback: startingWriteback)
        return offset
    }

    /// Writes `bytes` (whole entries) at `offset`, the end, without moving
    /// ``end``: for an owner that writes outside its lock and then, under it,
    /// calls ``noteWritten(upTo:startingWriteback:)`` (the bucket files). Touches no state.
    func write(_ bytes: [UInt8], at offset: UInt64) throws {
        try bytes.withUnsafeBytes { try file.write($0, at: offset) }
    }

    /// Moves ``end`` to `newEnd` once the entries before it are written (under the owner's lock).
    func noteWritten(upTo newEnd: UInt64, startingWriteback: Bool = true) {
        end = newEnd
        if startingWriteback { writeback.written(upTo: end, of: file) }
    }

    /// Makes the entries durable (after a failed sync, writing the unsynced bytes again first).
    func sync() throws {
        let target = end
        guard syncedEnd < target || syncFailed else { return }
        if syncFailed { try file.rewrite(from: syncedEnd, to: target) }
        do {
            try file.syncData()
        } catch {
            syncFailed = true
            throw error
        }
        syncFailed = false
        syncedEnd = target
    }

    /// Cuts the file at `offset` (a crash left entries there that the journal will supply again).
    func truncate(to offset: UInt64) throws {
        try file.truncate(to: offset)
        end = offset
        syncedEnd = min(syncedEnd, offset)
        writeback.truncated(to: offset)
    }

    // MARK: - Reading

    /// One entry read back: its envelope, its block's header and the whole block's bytes.
    struct Entry {
        var envelope: Envelope
        var header: StreamBlock.Header
        var block: [UInt8]
        /// Where it was read: the segment, its path and the entry's offset there.
        var segment: UInt32
        var path: String
        var offset: UInt64
        /// The segment's dictionary, for decoding `block`.
        var dictionary: CompressionDictionary?

        var link: Link { Link(segment: segment, offset: UInt32(offset)) }
    }

    /// Reads only the envelope and block header of the entry at `offset` (one
    /// `pread`): enough to follow a chain without loading its blocks.
    func envelopeAndHeader(at offset: UInt64) throws -> (Envelope, StreamBlock.Header) {
        var head = [UInt8](repeating: 0, count: Self.envelopeSize + StreamBlock.headerSize)
        let got = try head.withUnsafeMutableBytes { try file.read(into: $0, at: offset) }
        return try parseHead(head, got: got, at: offset)
    }

    /// The envelope and block header at the start of `bytes`, of which the first
    /// `got` were read from `offset`; throws naming the file and offset unless
    /// both are whole and agree on the block's length.
    private func parseHead(_ bytes: [UInt8], got: Int, at offset: UInt64) throws -> (Envelope, StreamBlock.Header) {
        guard got >= Self.envelopeSize + StreamBlock.headerSize,
              let envelope = bytes.withUnsafeBytes({ Self.parseEnvelope($0) }) else {
            throw damaged(at: offset, "bad entry envelope")
        }
        guard case .success(let header) = StreamBlock.parseHeader(bytes[Self.envelopeSize...]),
              header.totalLength == envelope.blockLength else {
            throw damaged(at: offset, "bad block header")
        }
        return (envelope, header)
    }

    /// Reads the envelope and block header of the entry at `offset`, and its
    /// whole block too when envelope and block fit in `readAhead` bytes, with
    /// one `pread` (checked as ``envelopeAndHeader(at:)`` checks them; the
    /// block's own checksum is left to its decoding).
    ///
    /// Why: walking a chain to load its entries took one `pread` for each
    /// entry's envelope and then one for the entry, and a system call costs
    /// more here than copying a few KiB. The segment mover loads every entry
    /// of each chain it moves.
    func entryAhead(at offset: UInt64, readAhead: Int) throws -> (envelope: Envelope, header: StreamBlock.Header, block: [UInt8]?) {
        let length = max(readAhead, Self.envelopeSize + StreamBlock.headerSize)
        var got = 0
        // Not zeroed first: only the `got` bytes read are looked at.
        let bytes = try [UInt8](unsafeUninitializedCapacity: length) { buffer, initialized in
            initialized = try file.read(into: UnsafeMutableRawBufferPointer(buffer), at: offset)
            got = initialized
        }
        let (envelope, header) = try parseHead(bytes, got: got, at: offset)
        let end = Self.envelopeSize + envelope.blockLength
        return (envelope, header, got >= end ? Array(bytes[Self.envelopeSize..<end]) : nil)
    }

    /// Reads the entry at `offset` whose block is known (from an earlier
    /// ``envelopeAndHeader(at:)``) to be `blockLength` bytes long, with one
    /// `pread` of envelope and block, checked as ``entry(at:)`` checks them.
    func entry(at offset: UInt64, blockLength: Int) throws -> Entry {
        // Uninitialised, and the envelope then moved out in place rather than
        // the block copied into an array of its own: `$all` over streams in
        // bucket files reads an entry for nearly every event, and zeroing and
        // a second allocation were a few percent of it. Bytes past a short
        // read are never looked at: the entry is refused.
        var bytes = [UInt8](unsafeUninitializedCapacity: Self.envelopeSize + blockLength) { _, count in
            count = Self.envelopeSize + blockLength
        }
        let read = try bytes.withUnsafeMutableBytes { try file.read(into: $0, at: offset) }
        let (envelope, header) = try parseHead(bytes, got: read, at: offset)
        guard envelope.blockLength == blockLength else { throw damaged(at: offset, "entry changed length since it was listed") }
        guard read == bytes.count else { throw damaged(at: offset, "entry runs past the end of the file") }
        bytes.removeFirst(Self.envelopeSize)
        return Entry(envelope: envelope, header: header, block: bytes, segment: number,
                     path: path.string, offset: offset, dictionary: dictionary)
    }

    /// Reads the entry at `offset` with one `pread` of its envelope and block
    /// header, and one of the rest. Throws `.corruptData` naming the file and
    /// offset if it is not a whole, intact entry.
    func entry(at offset: UInt64) throws -> Entry {
        let (envelope, header) = try envelopeAndHeader(at: offset)
        var block = [UInt8](repeating: 0, count: envelope.blockLength)
        let blockStart = offset + UInt64(Self.envelopeSize)
        let read = try block.withUnsafeMutableBytes { try file.read(into: $0, at: blockStart) }
        guard read == block.count else { throw damaged(at: offset, "entry runs past the end of the file") }
        return Entry(envelope: envelope, header: header, block: block, segment: number, path: path.string, offset: offset,
                     dictionary: dictionary)
    }

    /// What ``walk(_:)`` finds, in file order.
    enum Visit {
        /// An entry whose envelope and block header are whole; `intact` tells
        /// whether its stored bytes match their checksum too.
        case entry(offset: UInt64, envelope: Envelope, header: StreamBlock.Header, intact: Bool)
        /// Bytes at `offset` that are no entry, with a whole entry again at `next`.
        case damaged(offset: UInt64, next: UInt64)
    }

    /// Walks the file from its first entry to its end, calling `body` for each
    /// entry and each damaged stretch between entries, until `body` returns
    /// false. Returns where the walk ended: where `body` stopped it, the end of
    /// the file, or the start of a torn tail (bytes that are no whole entry,
    /// with no whole entry after them: an interrupted write).
    ///
    /// Reads the file in large sequential chunks: opening a store walks every
    /// segment, and one `pread` per entry would be thousands of small reads.
    ///
    /// `start`: where to begin instead of the first entry (an entry's offset).
    func walk(from start: UInt64? = nil, _ body: (Visit) throws -> Bool) throws -> UInt64 {
        try walk(checkingPayloads: true, from: start) { visit, _, _ in try body(visit) }
    }

    /// ``walk(_:)``, also handing `body` each entry's whole block, header and
    /// stored payload (valid during the call; empty for damaged stretches), so
    /// a caller that checks or copies blocks reads every byte once. Without
    /// `checkingPayloads`, `intact` is true and the payload CRC is left to the caller.
    ///
    /// With `lookahead` > 0, `body` is also handed, when the read buffer holds it, the
    /// stream number of the entry `lookahead` entries after this one (nil otherwise):
    /// a caller that updates a table per stream can ask for that row's cache line
    /// early (``Prefetch``), so the random access overlaps this entry's work. It is
    /// read from an envelope not yet checked: a hint, never to be trusted.
    func walk(checkingPayloads: Bool, chunkBytes: Int = 1 << 20, lookahead: Int = 0, from start: UInt64? = nil,
              _ body: (Visit, UnsafeRawBufferPointer, _ upcoming: UInt32?) throws -> Bool) throws -> UInt64 {
        let size = try file.size()
        var offset = max(entriesStart, start ?? entriesStart)
        // Aligned as `malloc` aligns (16), not more: glibc 2.36 serves a larger
        // alignment by carving an aligned chunk out of a bigger one and never
        // reuses a freed chunk of exactly the size for the next such request. The
        // segment mover walks segments every few seconds, and each walk's 1 MiB
        // stayed behind in its thread's heap: 40 MB free in one heap after 45 s
        // of 100-event appends (`malloc_info`).
        var chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkBytes, alignment: 16)
        defer { chunk.deallocate() }
        var chunkStart: UInt64 = 0
        var chunkCount = 0
        /// Makes `[at, at + count)` available in `chunk`; false if the file is shorter.
        func ensure(_ at: UInt64, _ count: Int) throws -> Bool {
            guard at + UInt64(count) <= size else { return false }
            if at >= chunkStart, at + UInt64(count) <= chunkStart + UInt64(chunkCount) { return true }
            if count > chunk.count {
                chunk.deallocate()
                chunk = .allocate(byteCount: count, alignment: 16)
            }
            let length = Int(min(size - at, UInt64(chunk.count)))
            var got = 0
            while got < length {
                let n = try file.read(into: UnsafeMutableRawBufferPointer(rebasing: chunk[got..<length]), at: at + UInt64(got))
                if n == 0 { break }
                got += n
            }
            chunkStart = at
            chunkCount = got
            return got >= count
        }
        /// The envelope and block header at `at` if they are whole and the entry fits in the file.
        func whole(at: UInt64) throws -> (Envelope, StreamBlock.Header)? {
            guard try ensure(at, Self.envelopeSize + StreamBlock.headerSize) else { return nil }
            let start = Int(at - chunkStart)
            let bytes = UnsafeRawBufferPointer(rebasing: chunk[start..<chunkCount])
            guard let envelope = Self.parseEnvelope(bytes),
                  case .success(let header) = StreamBlock.parseHeader(UnsafeRawBufferPointer(rebasing: bytes[Self.envelopeSize...])),
                  header.totalLength == envelope.blockLength,
                  at + UInt64(Self.envelopeSize + envelope.blockLength) <= size
            else { return nil }
            return (envelope, header)
        }
        // The entry `lookahead` entries ahead (when `ahead > offset`) and how many entries it is ahead.
        var ahead: UInt64 = 0
        var aheadBy = 0
        /// Steps `ahead` to `lookahead` entries past `offset` if the buffer holds their envelopes; its stream number, if there.
        func upcoming() -> UInt32? {
            guard lookahead > 0 else { return nil }
            if ahead <= offset { ahead = offset; aheadBy = 0 }
            while aheadBy < lookahead {
                guard ahead >= chunkStart, ahead + 20 <= chunkStart + UInt64(chunkCount) else { return nil }
                let at = Int(ahead - chunkStart)
                let bytes = UnsafeRawBufferPointer(chunk)
                let length = UInt64(LittleEndian.load(UInt32.self, from: bytes, at: at + 16))
                guard LittleEndian.load(UInt32.self, from: bytes, at: at) == Self.envelopeMagic,
                      length >= UInt64(StreamBlock.headerSize), length < size else { return nil }
                ahead += UInt64(Self.envelopeSize) + length
                aheadBy += 1
            }
            guard ahead >= chunkStart, ahead + 8 <= chunkStart + UInt64(chunkCount),
                  LittleEndian.load(UInt32.self, from: UnsafeRawBufferPointer(chunk), at: Int(ahead - chunkStart)) == Self.envelopeMagic
            else { return nil }
            return LittleEndian.load(UInt32.self, from: UnsafeRawBufferPointer(chunk), at: Int(ahead - chunkStart) + 4)
        }
        while offset < size {
            guard let (envelope, header) = try whole(at: offset) else {
                // Damage, or a torn tail: which one depends on whether a whole entry follows.
                var next: UInt64? = nil
                var probe = offset + 1
                while probe + UInt64(Self.envelopeSize + StreamBlock.headerSize) <= size {
                    if try ensure(probe, 4) {
                        let at = Int(probe - chunkStart)
                        let magic = LittleEndian.load(UInt32.self, from: UnsafeRawBufferPointer(chunk), at: at)
                        if magic == Self.envelopeMagic, try whole(at: probe) != nil {
                            next = probe
                            break
                        }
                    }
                    probe += 1
                }
                guard let next else { return offset }  // a torn tail
                guard try body(.damaged(offset: offset, next: next), UnsafeRawBufferPointer(start: nil, count: 0), nil) else { return offset }
                offset = next
                continue
            }
            _ = try ensure(offset, Self.envelopeSize + envelope.blockLength)
            let blockStart = Int(offset - chunkStart) + Self.envelopeSize
            let block = UnsafeRawBufferPointer(rebasing: chunk[blockStart..<(blockStart + header.totalLength)])
            let intact = !checkingPayloads
                || CRC32C.checksum(UnsafeRawBufferPointer(rebasing: block[StreamBlock.headerSize...])) == header.payloadCRC
            let next = upcoming()
            guard try body(.entry(offset: offset, envelope: envelope, header: header, intact: intact), block, next) else { return offset }
            offset += UInt64(Self.envelopeSize + envelope.blockLength)
            aheadBy -= 1
        }
        return offset
    }

    /// Walks the intact entries from the start (see ``walk(_:)``), stopping at
    /// the first that is not, or where `body` returns false. Returns the offset
    /// where it stopped.
    func scan(_ body: (UInt64, Envelope, StreamBlock.Header) throws -> Bool) throws -> UInt64 {
        var stoppedAt: UInt64? = nil
        let end = try walk { visit in
            switch visit {
            case .entry(let offset, let envelope, let header, let intact):
                guard intact, try body(offset, envelope, header) else {
                    stoppedAt = offset
                    return false
                }
                return true
            case .damaged(let offset, _):
                stoppedAt = offset
                return false
            }
        }
        return stoppedAt ?? end
    }

    func damaged(at offset: UInt64, _ why: String) -> RingstoreError {
        RingstoreError(.corruptData, "split segment \(path) is damaged at offset \(offset): \(why)",
                       path: path.string, offset: offset)
    }
}
