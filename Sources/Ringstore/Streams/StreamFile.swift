import SystemPackage

/// One stream's events, in an append-only file of ``StreamBlock``s, with a
/// sidecar index so that a version is found without scanning the file.
///
/// Data file:
///
///     offset size  field
///      0     8     magic "RSSTRM01"
///      8     4     format version (2: blocks with 48-byte headers)
///     12     4     stream name length n (1-1024)
///     16     n     stream name (the file name is only its hash)
///     …            zero padding to a multiple of 8
///     …      4     CRC32C of everything before it
///     …      4     reserved
///     …            blocks, back to back
///
/// Index file (same path + `.idx`): 16-byte entries `[first version u64][block
/// offset u64]`, one per block, in order. It is created only once the stream
/// has ``indexThreshold(for:)`` blocks (16 to 63): below that, opening hops the few block headers
/// instead, which spares most streams a second inode (creating files is the
/// dominant cost of a new stream). The data file is the truth: on open
/// the index is checked against it (a short, damaged or missing index is
/// rebuilt by hopping block headers), blocks written after the last index entry
/// are picked up, and a torn last block is cut off — but only if the journal
/// can rebuild it: its header is unreadable (the signature of an interrupted
/// write) or names a first journal position at or after the journal's
/// checkpoint (`replayFrom`), so the splitter will copy those events again. A
/// damaged block the journal no longer holds is never cut: reading it throws
/// ``RingstoreError/Code/corruptData`` naming the file and the block's offset.
///
/// Not thread-safe by itself: ``StreamDirectory/Handle`` serialises every use
/// of an open file under its lock, which is what makes the `@unchecked
/// Sendable` below sound.
final class StreamFile: @unchecked Sendable {
    static let magic: [UInt8] = Array("RSSTRM01".utf8)
    static let formatVersion: UInt32 = 2
    static let indexEntrySize = 16
    /// Fewest blocks from which on the sidecar index file is kept.
    static let indexThreshold = 16

    /// Blocks from which on `stream`'s file gets its index: 16 to 63, by a hash of
    /// the name. Why not the same for all: streams written at the same pace reach
    /// any one number of blocks together, and thousands of index files created
    /// in one checkpoint stalled the splitter for seconds (creating a file is the
    /// costly part); spread over 48 checkpoints they are not noticed. Reads of a
    /// file without an index hop its block headers (a file this small is read
    /// whole when first opened).
    static func indexThreshold(for stream: String) -> Int {
        var hash: UInt32 = 2_166_136_261
        for byte in stream.utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        return indexThreshold + Int(hash % 48)
    }

    let path: FilePath
    /// `path` as a string, kept because converting a `FilePath` is not free.
    let pathString: String
    let streamName: String
    private let data: StorageFile
    private var index: StorageFile?
    /// In-memory copy of the index, (first version, offset) per block — loaded
    /// only when a read needs it: opening a file to append to it (what the
    /// splitter does, over and over, for thousands of streams) reads just the
    /// index's last entry, so its cost does not grow with the stream.
    private var loadedBlocks: [(firstVersion: UInt64, offset: UInt64)]?
    private var blockCount = 0
    private var headerLength: UInt64 = 0
    private var dataEnd: UInt64
    private(set) var nextVersion: UInt64
    /// Data and index bytes known durable, and whether a sync failed since: then
    /// the next sync writes everything after them again first (see ``StorageFile/rewrite(from:to:)``).
    private var syncedDataEnd: UInt64 = 0
    private var syncedIndexEnd: UInt64 = 0
    private var syncFailed = false
    /// Directory entries this file created (the data file, its index file), and
    /// how many of them a sync of the folder is known to cover: a file's own
    /// `fdatasync` does not make its name durable (see ``StreamDirectory/syncAll(dirty:)``).
    private(set) var entriesCreated = 0
    var entriesSynced = 0
    /// The most recently decoded block (sequential reads revisit it), kept only
    /// when there is no shared ``blockCache``: with thousands of files open,
    /// one decoded block each would hold far more memory than the shared budget.
    private var cachedBlock: (offset: UInt64, events: [RecordedEvent])?
    /// The store's shared cache of decoded blocks, if any (set by ``StreamDirectory``).
    var blockCache: BlockCache?
    /// A small file's bytes, read whole while ``recover(headerLength:replayFrom:segmentsHoldFrom:)``
    /// hops its block headers: one read instead of one per block.
    private var readAhead: (offset: UInt64, bytes: [UInt8])?
    /// Files up to this size are read whole when opened without an index.
    static let readAheadLimit: UInt64 = 256 << 10


    private init(path: FilePath, streamName: String, data: StorageFile, index: StorageFile?, dataEnd: UInt64) {
        self.path = path
        self.pathString = path.string
        self.streamName = streamName
        self.data = data
        self.index = index
        self.dataEnd = dataEnd
        self.nextVersion = 0
    }

    static func indexPath(for path: String) -> FilePath { FilePath(path + ".idx") }

    /// File descriptors this file holds open: the data file, and the index once there is one.
    var descriptorCount: Int { index == nil ? 1 : 2 }

    /// Thrown by ``open(at:replayFrom:expecting:)`` for a file that was created
    /// but whose header never reached the disk (the process or the power died
    /// in between), when nothing else can have been written to it either: it is
    /// empty, shorter than any header, or no longer than the expected stream's
    /// header and holding no intact one (all zeros, or a torn header write).
    /// Such a file held nothing and may be created again.
    ///
    /// Also thrown for a larger file whose header is lost when everything
    /// readable in it is still held by the journal or the split segments (a
    /// power cut kept later block writes and lost the header's; see
    /// ``holdsOnlyRebuildableBlocks(_:path:stream:headerLength:indexPath:replayFrom:segmentsHoldFrom:)``).
    /// Anything else larger whose header is unreadable is damage, however its first
    /// bytes look: it is kept and reported (``RingstoreError/Code/corruptData``
    /// with its path and offset 0), never removed, since it may hold events
    /// that exist nowhere else.
    struct NeverWritten: Error {}

    /// Bytes of the header of a file for a stream whose name has `nameBytes` bytes.
    static func headerLength(nameBytes: Int) -> UInt64 {
        UInt64(16 + nameBytes + (8 - (16 + nameBytes) % 8) % 8 + 8)
    }

    // MARK: - Creating and opening

    /// Creates the file for `stream` (which must not exist yet). Not synced:
    /// the splitter syncs files (and their folders) before each checkpoint.
    static func create(at pathString: String, stream: String) throws -> StreamFile {
        let path = FilePath(pathString)
        let name = Array(stream.utf8)
        var header = magic
        withUnsafeBytes(of: formatVersion.littleEndian) { header += $0 }
        withUnsafeBytes(of: UInt32(name.count).littleEndian) { header += $0 }
        header += name
        header += [UInt8](repeating: 0, count: (8 - header.count % 8) % 8)
        withUnsafeBytes(of: CRC32C.checksum(header).littleEndian) { header += $0 }
        header += [0, 0, 0, 0]
        let data = try StorageFile.open(path, create: true, exclusive: true)
        do {
            // No index file can be left over here: one is created only once its data
            // file has 16 blocks, by then durable, and creating it truncates any
            // stale one. (Removing it on every creation cost the splitter a fifth
            // of its time when thousands of streams are new.)
            try header.withUnsafeBytes { try data.write($0, at: 0) }
        } catch {
            data.close()
            StorageDirectory.remove(path)
            throw error
        }
        let file = StreamFile(path: path, streamName: stream, data: data, index: nil, dataEnd: UInt64(header.count))
        file.headerLength = UInt64(header.count)
        file.loadedBlocks = []  // no index file: the block list is always in memory
        file.entriesCreated = 1
        return file
    }

    /// Opens an existing stream file, checking its header and index and cutting
    /// a torn last block whose events the journal still holds (first journal
    /// position from `replayFrom` on) or the split segments do (first version
    /// from `segmentsHoldFrom` on: a move was interrupted).
    /// `expecting` names the stream looked for at this path: a file no longer
    /// than its header that holds no intact header throws ``NeverWritten``.
    /// `heldElsewhere` says whether the journal or the segments hold every
    /// version of that stream from 0 on (asked only when the header is damaged).
    static func open(at pathString: String, replayFrom: UInt64, segmentsHoldFrom: UInt64 = .max,
                     expecting stream: String? = nil, heldElsewhere: () -> Bool = { false }) throws -> StreamFile {
        let path = FilePath(pathString)
        let data = try StorageFile.open(path)
        let indexPath = indexPath(for: pathString)
        let index: StorageFile?
        let name: String
        let headerLength: UInt64
        do {
            let headerOnly = stream.map { Self.headerLength(nameBytes: $0.utf8.count) } ?? 0
            do {
                (name, headerLength) = try readHeader(data, path: pathString, headerOnlyUpTo: headerOnly)
            } catch let error as RingstoreError where error.code == .corruptData && headerOnly > 0 {
                // A lost header write with later block writes kept (a power cut before the
                // file's first sync): every block then is one the journal or the segments
                // will supply again. Known at once when they hold the stream from version
                // 0; else told by the blocks that can still be read.
                if try segmentsHoldFrom == 0 || heldElsewhere()
                    || Self.holdsOnlyRebuildableBlocks(data, path: path, stream: stream!, headerLength: headerOnly,
                                                       indexPath: indexPath, replayFrom: replayFrom,
                                                       segmentsHoldFrom: segmentsHoldFrom) {
                    throw NeverWritten()
                }
                throw error
            }
            index = StorageDirectory.exists(indexPath) ? try StorageFile.open(indexPath) : nil
        } catch {
            data.close()
            throw error
        }
        let file = StreamFile(path: path, streamName: name, data: data, index: index, dataEnd: headerLength)
        file.headerLength = headerLength
        do {
            if try !file.openQuickly(replayFrom: replayFrom, segmentsHoldFrom: segmentsHoldFrom) {
                try file.recover(headerLength: headerLength, replayFrom: replayFrom, segmentsHoldFrom: segmentsHoldFrom)
            }
            file.syncedDataEnd = file.dataEnd
            file.syncedIndexEnd = file.indexEnd
        } catch {
            file.close()
            throw error
        }
        return file
    }

    /// What this process knows about a stream file it closed: enough to reopen
    /// it for appending without reading or checking anything in it again.
    struct ResumePoint: Sendable {
        var headerLength: UInt64
        var dataEnd: UInt64
        var nextVersion: UInt64
        var blockCount: Int
        /// The block list of a file without an index, when it was in memory:
        /// spares reads the hop over every block header after reopening.
        var blocks: [(firstVersion: UInt64, offset: UInt64)]?
        /// What was known durable, so that a sync failure before the close is
        /// still made good by the next sync after reopening.
        var syncedDataEnd: UInt64 = 0
        var syncedIndexEnd: UInt64 = 0
        var syncFailed = false
        /// Whether the file had its index file (see ``indexThreshold(for:)``).
        var hasIndex = false
    }

    /// Where appends to this file would continue.
    var resumePoint: ResumePoint {
        ResumePoint(headerLength: headerLength, dataEnd: dataEnd, nextVersion: nextVersion, blockCount: blockCount,
                    blocks: index == nil ? loadedBlocks : nil,
                    syncedDataEnd: syncedDataEnd, syncedIndexEnd: syncedIndexEnd, syncFailed: syncFailed,
                    hasIndex: index != nil)
    }

    /// Reopens a file this process wrote and closed (its header, index and last
    /// block were checked when it was first opened). Returns nil, so that the
    /// caller falls back to ``open(at:replayFrom:)``, unless the data file (and
    /// the index, when there is one) still ends exactly where it ended then: a
    /// write that failed half-way or anything else unexpected takes the full path.
    static func reopen(at pathString: String, stream: String, resume: ResumePoint) throws -> StreamFile? {
        let path = FilePath(pathString)
        guard let data = try? StorageFile.open(path) else { return nil }
        var index: StorageFile?
        let expectsIndex = resume.hasIndex
        guard (try? data.size()) == resume.dataEnd else {
            data.close()
            return nil
        }
        if expectsIndex {
            index = try? StorageFile.open(indexPath(for: pathString))
            guard let index, (try? index.size()) == UInt64(resume.blockCount * indexEntrySize) else {
                index?.close()
                data.close()
                return nil
            }
        }
        let file = StreamFile(path: path, streamName: stream, data: data, index: index, dataEnd: resume.dataEnd)
        file.headerLength = resume.headerLength
        file.nextVersion = resume.nextVersion
        file.blockCount = resume.blockCount
        file.syncedDataEnd = resume.syncedDataEnd
        file.syncedIndexEnd = resume.syncedIndexEnd
        file.syncFailed = resume.syncFailed
        // Else loaded (from the index, or by hopping block headers) when a read needs it.
        file.loadedBlocks = index == nil && resume.blocks?.count == resume.blockCount ? resume.blocks : nil
        return file
    }

    /// Whether a file whose header is damaged holds nothing that exists only
    /// here: every block readable at the offsets its header length, its index
    /// file and its block lengths lead to names a first journal position from
    /// `replayFrom` on or a first version from `segmentsHoldFrom` on, and at
    /// least one does (or the file holds only zeros past the header).
    ///
    /// Why this is the test: the checkpoint syncs a stream file before it moves
    /// past the file's blocks, and that sync covers the header written when the
    /// file was created. So a header lost in a power cut means the file was never
    /// synced, and all it holds is still in the journal (or, for blocks the mover
    /// copied, in the split segments). A durable file damaged later (the medium
    /// failing) holds blocks older than both, and is kept and reported.
    private static func holdsOnlyRebuildableBlocks(_ data: StorageFile, path: FilePath, stream: String, headerLength: UInt64,
                                                   indexPath: FilePath, replayFrom: UInt64,
                                                   segmentsHoldFrom: UInt64) throws -> Bool {
        let size = try data.size()
        let probe = StreamFile(path: path, streamName: stream, data: data, index: nil, dataEnd: size)
        probe.headerLength = headerLength
        func rebuildable(_ header: StreamBlock.Header) -> Bool {
            header.firstPosition >= replayFrom || header.firstVersion >= segmentsHoldFrom
        }
        var offsets: [UInt64] = []
        if StorageDirectory.exists(indexPath), let index = try? StorageFile.open(indexPath) {
            defer { index.close() }
            let count = Int(min(try index.size(), 1 << 24)) / indexEntrySize
            var entries = [UInt8](repeating: 0, count: count * indexEntrySize)
            let got = try entries.withUnsafeMutableBytes { try index.read(into: $0, at: 0) }
            entries.withUnsafeBytes { e in
                for i in 0..<(got / indexEntrySize) {
                    offsets.append(UInt64(littleEndian: e.loadUnaligned(fromByteOffset: i * indexEntrySize + 8, as: UInt64.self)))
                }
            }
        }
        var sawRebuildable = false
        var offset = headerLength
        while offset < size, let header = try probe.readBlockHeaderOrNil(at: offset) {
            guard rebuildable(header) else { return false }
            sawRebuildable = true
            offset += UInt64(header.totalLength)
        }
        for offset in offsets where offset >= headerLength && offset < size {
            guard let header = try probe.readBlockHeaderOrNil(at: offset) else { continue }
            guard rebuildable(header) else { return false }
            sawRebuildable = true
        }
        if sawRebuildable { return true }
        // No block to tell by: only a file holding nothing but zeros past its
        // header (every write after the header lost) is surely empty.
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        var at = headerLength
        while at < size {
            let got = try chunk.withUnsafeMutableBytes { try data.read(into: $0, at: at) }
            guard got > 0 else { break }
            guard chunk[..<got].allSatisfy({ $0 == 0 }) else { return false }
            at += UInt64(got)
        }
        return true
    }

    /// Reads and checks the header. A file of at most `headerOnlyUpTo` bytes
    /// (the header's length for the stream expected here) without an intact
    /// header throws ``NeverWritten``; a larger one throws `.corruptData`.
    private static func readHeader(_ data: StorageFile, path pathString: String,
                                   headerOnlyUpTo limit: UInt64) throws -> (String, UInt64) {
        let path = pathString
        var fixed = [UInt8](repeating: 0, count: 16)
        let got = try fixed.withUnsafeMutableBytes { try data.read(into: $0, at: 0) }
        // Shorter than any header (at least 32 bytes): at most a torn header was written.
        if got < 16 { throw NeverWritten() }
        func damaged(_ why: String) throws -> any Error {
            // No longer than the header: nothing else can have been written, so the
            // file is created again (a lost or torn header write before any sync).
            let size = try data.size()
            if size <= limit { return NeverWritten() }
            return RingstoreError(.corruptData, "stream file \(path) has a damaged header: \(why); the file (\(size) bytes) is kept as it is",
                                  path: pathString, offset: 0)
        }
        // A header that never reached the disk (or only in part): the file held
        // nothing if it is no longer than the header; else it is damage.
        if fixed.allSatisfy({ $0 == 0 }) { throw try damaged("its first 16 bytes are zero") }
        guard Array(fixed[0..<8]) == magic else { throw try damaged("bad magic") }
        let (version, count) = fixed.withUnsafeBytes {
            (UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt32.self)),
             Int(UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 12, as: UInt32.self))))
        }
        guard version == formatVersion else {
            throw RingstoreError(.incompatibleFormat, "stream file \(path) has format version \(version); this build reads \(formatVersion)", path: pathString)
        }
        guard count >= 1, count <= Naming.maxStreamNameBytes else { throw try damaged("stream name length \(count)") }
        let padded = 16 + count + (8 - (16 + count) % 8) % 8
        var header = [UInt8](repeating: 0, count: padded + 8)
        guard try header.withUnsafeMutableBytes({ try data.read(into: $0, at: 0) }) == header.count else { throw try damaged("truncated") }
        let stored = header.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: padded, as: UInt32.self)) }
        guard CRC32C.checksum(Array(header[0..<padded])) == stored else { throw try damaged("checksum mismatch") }
        return (String(decoding: header[16..<(16 + count)], as: UTF8.self), UInt64(header.count))
    }

    /// The common case: the index's last entry names a whole, valid last block
    /// that ends exactly at the end of the data file, and every block the
    /// journal or the split segments could still rebuild (from `replayFrom` or
    /// `segmentsHoldFrom` on: not known durable, see
    /// ``recover(headerLength:replayFrom:segmentsHoldFrom:)``) checks out. Then nothing else
    /// needs checking or loading. Returns false when the full `recover` must run.
    private func openQuickly(replayFrom: UInt64, segmentsHoldFrom: UInt64) throws -> Bool {
        guard let index else { return false }
        let indexSize = try index.size()
        guard indexSize >= UInt64(Self.indexEntrySize), indexSize % UInt64(Self.indexEntrySize) == 0 else { return false }
        let count = Int(indexSize) / Self.indexEntrySize
        let fileSize = try data.size()
        // From the last block back to the first one below `replayFrom` (usually
        // just the last): each whole, valid, and ending where the next begins.
        var nextOffset = fileSize
        var nextFirstVersion: UInt64?
        var last: StreamBlock.Header?
        for i in stride(from: count - 1, through: 0, by: -1) {
            guard let (version, offset) = try indexEntry(i), offset < nextOffset,
                  let header = try readBlockHeaderOrNil(at: offset), header.firstVersion == version,
                  offset + UInt64(header.totalLength) == nextOffset,
                  nextFirstVersion.map({ header.firstVersion + UInt64(header.count) == $0 }) ?? true
            else { return false }
            if last == nil {
                guard (try? readBlock(at: offset, header: header)) != nil else { return false }
                last = header
            } else if header.firstPosition >= replayFrom || header.firstVersion >= segmentsHoldFrom {
                guard (try? readBlock(at: offset, header: header)) != nil else { return false }
            }
            if header.firstPosition < replayFrom && header.firstVersion < segmentsHoldFrom { break }
            if i == 0 && offset != headerLength { return false }
            nextOffset = offset
            nextFirstVersion = header.firstVersion
        }
        guard let last else { return false }
        blockCount = count
        loadedBlocks = nil
        dataEnd = fileSize
        nextVersion = last.firstVersion + UInt64(last.count)
        return true
    }

    /// Index entry `i`: (first version, block offset).
    private func indexEntry(_ i: Int) throws -> (UInt64, UInt64)? {
        guard let index else { return nil }
        var entry = [UInt8](repeating: 0, count: Self.indexEntrySize)
        guard try entry.withUnsafeMutableBytes({ try index.read(into: $0, at: UInt64(i * Self.indexEntrySize)) }) == entry.count else { return nil }
        return entry.withUnsafeBytes {
            (UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
             UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
        }
    }

    /// Every block's (first version, offset), loading the index file if needed.
    /// Every block's offset (tests: to damage a chosen block).
    func blockOffsetsForTesting() throws -> [UInt64] { try blockList().map(\.offset) }

    private func blockList() throws -> [(firstVersion: UInt64, offset: UInt64)] {
        if let loadedBlocks { return loadedBlocks }
        var list: [(firstVersion: UInt64, offset: UInt64)] = []
        list.reserveCapacity(blockCount)
        if let index {
            var entries = [UInt8](repeating: 0, count: blockCount * Self.indexEntrySize)
            _ = try entries.withUnsafeMutableBytes { try index.read(into: $0, at: 0) }
            entries.withUnsafeBytes { e in
                for i in 0..<blockCount {
                    list.append((UInt64(littleEndian: e.loadUnaligned(fromByteOffset: i * 16, as: UInt64.self)),
                                 UInt64(littleEndian: e.loadUnaligned(fromByteOffset: i * 16 + 8, as: UInt64.self))))
                }
            }
            if !Self.isPlausible(list, headerLength: headerLength, dataEnd: dataEnd) {
                // An index file written since its last sync can come back from a power
                // cut with holes (zeros) before a good last entry, which is all that
                // opening checks: the data file is the truth, so rebuild from it.
                list = try hopBlockHeaders()
                guard list.count == blockCount else {
                    throw RingstoreError(.corruptData, "stream file \(pathString) holds \(list.count) blocks where \(blockCount) were expected",
                                         stream: streamName, path: pathString)
                }
                try index.truncate(to: 0)
                syncedIndexEnd = 0
                try writeIndexEntries(list[...], from: 0)
            }
        } else {
            // A small file reopened by `reopen`: hop its few block headers.
            list = try hopBlockHeaders()
        }
        guard list.count == blockCount, list.first?.offset == headerLength || blockCount == 0 else {
            throw RingstoreError(.corruptData, "stream file index \(pathString).idx does not match its data file",
                                 stream: streamName, path: pathString + ".idx")
        }
        loadedBlocks = list
        return list
    }

    /// Every block's (first version, offset), from the block headers of the data file.
    private func hopBlockHeaders() throws -> [(firstVersion: UInt64, offset: UInt64)] {
        var list: [(firstVersion: UInt64, offset: UInt64)] = []
        var offset = headerLength
        while offset < dataEnd {
            let header = try readBlockHeader(at: offset)
            list.append((header.firstVersion, offset))
            offset += UInt64(header.totalLength)
        }
        return list
    }

    /// Whether index entries can be right: the first block right after the
    /// header, versions and offsets rising, every block inside the data.
    private static func isPlausible(_ list: [(firstVersion: UInt64, offset: UInt64)], headerLength: UInt64, dataEnd: UInt64) -> Bool {
        guard let first = list.first else { return true }
        guard first.offset == headerLength, list.last!.offset < dataEnd else { return false }
        for (a, b) in zip(list, list.dropFirst()) where b.firstVersion <= a.firstVersion || b.offset <= a.offset {
            return false
        }
        return true
    }

    /// Loads the index, checks it against the data file, indexes blocks written
    /// after it, and cuts a torn or damaged tail.
    ///
    /// What a power cut can leave: the blocks written since the file's last sync
    /// may each be whole, missing (zeros, or nothing) or torn (some 512-byte
    /// sectors written, others not), in any combination, later ones whole after
    /// earlier ones lost; the index file likewise. Every such block names a
    /// first journal position at or after `replayFrom` (the checkpoint: it never
    /// passes a block that is not durable), and the journal holds all its events;
    /// so do blocks from `segmentsHoldFrom` on (the split segments still hold
    /// their versions: a move from them was interrupted).
    /// So blocks from the first one at or after `replayFrom` on are checked
    /// whole (header and body), and the file is cut at the first that fails:
    /// the splitter writes those events again. Blocks before it are durable and
    /// trusted as they are; damage there is kept and reported by reads, never cut.
    private func recover(headerLength: UInt64, replayFrom: UInt64, segmentsHoldFrom: UInt64) throws {
        let fileSize = try data.size()
        if fileSize > headerLength && fileSize - headerLength <= Self.readAheadLimit {
            var bytes = [UInt8](repeating: 0, count: Int(fileSize - headerLength))
            let got = try bytes.withUnsafeMutableBytes { try data.read(into: $0, at: headerLength) }
            bytes.removeLast(bytes.count - got)
            readAhead = (headerLength, bytes)
        }
        defer { readAhead = nil }
        let indexSize = try index?.size() ?? 0
        var entries = [UInt8](repeating: 0, count: Int(indexSize) / Self.indexEntrySize * Self.indexEntrySize)
        if let index { _ = try entries.withUnsafeMutableBytes { try index.read(into: $0, at: 0) } }
        var loaded: [(firstVersion: UInt64, offset: UInt64)] = []
        loaded.reserveCapacity(entries.count / Self.indexEntrySize)
        entries.withUnsafeBytes { e in
            for i in 0..<(e.count / Self.indexEntrySize) {
                let version = UInt64(littleEndian: e.loadUnaligned(fromByteOffset: i * 16, as: UInt64.self))
                let offset = UInt64(littleEndian: e.loadUnaligned(fromByteOffset: i * 16 + 8, as: UInt64.self))
                // Entries must run forward; stop trusting the index where they do not.
                if let last = loaded.last, version <= last.firstVersion || offset <= last.offset { break }
                if loaded.isEmpty && offset != headerLength { break }
                loaded.append((version, offset))
            }
        }
        // Trust entries up to the last one whose block header agrees with it and lies within the file.
        while let last = loaded.last {
            if let header = try? readBlockHeader(at: last.offset), header.firstVersion == last.firstVersion,
               last.offset + UInt64(header.totalLength) <= fileSize {
                break
            }
            loaded.removeLast()
        }
        // Blocks the journal can rebuild are checked one by one below, not taken from the index.
        let firstReplayable = loaded.partitioningIndex { entry in
            guard let header = (try? readBlockHeaderOrNil(at: entry.offset)) ?? nil, header.firstVersion == entry.firstVersion else { return true }
            return header.firstPosition >= replayFrom
        }
        loaded.removeLast(loaded.count - firstReplayable)
        var blocks = loaded
        var end = headerLength
        var next: UInt64 = 0
        if let last = loaded.last, let header = try readBlockHeaderOrNil(at: last.offset) {
            end = last.offset + UInt64(header.totalLength)
            next = header.firstVersion + UInt64(header.count)
        }
        // Pick up blocks written after the last index entry (or all of them, rebuilding the index).
        var indexedCount = loaded.count
        while end < fileSize {
            guard let header = try readBlockHeaderOrNil(at: end), blocks.isEmpty || header.firstVersion == next else {
                // A block that does not follow on: cut there if what comes after it is
                // replayable (a block lost or torn by a power cut, later ones kept): its
                // records are in the journal, or the split segments hold every version
                // from the missing one on (the mover's copy was not synced yet).
                if next < segmentsHoldFrom,
                   let (later, laterHeader) = try nextValidHeader(after: end, fileSize: fileSize),
                   laterHeader.firstPosition < replayFrom && laterHeader.firstVersion < segmentsHoldFrom {
                    throw RingstoreError(.corruptData, "stream file \(path) has a damaged block header at offset \(end) (a valid block follows at \(later))",
                                         stream: streamName, path: pathString, offset: end)
                }
                break
            }
            let complete = end + UInt64(header.totalLength) <= fileSize
            let isLast = end + UInt64(header.totalLength) >= fileSize
            let replayable = header.firstPosition >= replayFrom || header.firstVersion >= segmentsHoldFrom
            if replayable || isLast, !complete || (try? readBlock(at: end, header: header)) == nil {
                // A bad block the journal or the split segments will supply again: cut it,
                // and everything after it.
                if replayable { break }
                guard complete else {
                    throw RingstoreError(.corruptData, "stream file \(path) ends inside a block at offset \(end) whose events the journal no longer holds",
                                         stream: streamName, path: pathString, offset: end)
                }
                // Durable but damaged: kept, for reads to report.
            }
            blocks.append((header.firstVersion, end))
            end += UInt64(header.totalLength)
            next = header.firstVersion + UInt64(header.count)
        }
        if end < fileSize { try data.truncate(to: end) }
        dataEnd = end
        nextVersion = next
        loadedBlocks = blocks
        blockCount = blocks.count
        if let index, indexedCount != Int(indexSize) / Self.indexEntrySize || Int(indexSize) % Self.indexEntrySize != 0 {
            // Cut the index back to its trusted prefix; the rest is rewritten below.
            try index.truncate(to: UInt64(indexedCount * Self.indexEntrySize))
        }
        if index == nil { indexedCount = 0 }
        try writeIndexEntries(blocks[indexedCount...], from: indexedCount)
    }

    /// The offset of the first valid block header after `offset`, if any (a slow
    /// byte-by-byte search, used only when a header is damaged).
    private func nextValidHeader(after offset: UInt64, fileSize: UInt64) throws -> (UInt64, StreamBlock.Header)? {
        guard fileSize > offset + 1 else { return nil }
        var rest = [UInt8](repeating: 0, count: Int(fileSize - offset - 1))
        _ = try rest.withUnsafeMutableBytes { try data.read(into: $0, at: offset + 1) }
        let magic = withUnsafeBytes(of: StreamBlock.magic.littleEndian) { Array($0) }
        var i = 0
        while i + StreamBlock.headerSize <= rest.count {
            if rest[i] == magic[0], rest[i + 1] == magic[1], rest[i + 2] == magic[2], rest[i + 3] == magic[3],
               let header = try? StreamBlock.parseHeader(rest[i..<(i + StreamBlock.headerSize)]).get() {
                return (offset + 1 + UInt64(i), header)
            }
            i += 1
        }
        return nil
    }

    func close() {
        data.close()
        index?.close()
    }

    // MARK: - Writing

    /// Appends `events` (consecutive versions) as one or more blocks with one
    /// write to the data file and one to the index. Events whose version is
    /// already stored are skipped, so replaying the journal after a crash never
    /// stores a version twice; a gap throws.
    func append(_ events: [RecordedEvent], compress: Bool) throws {
        guard let firstNew = events.firstIndex(where: { $0.version >= nextVersion }) else { return }
        let fresh = events[firstNew...]
        for (a, b) in zip(fresh, fresh.dropFirst()) where b.version != a.version + 1 {
            throw RingstoreError(.invalidArgument, "events appended to stream file \(path) are not consecutive (\(a.version) then \(b.version))",
                                 stream: streamName, path: pathString)
        }
        var blocks: [StreamBlock.RawBlock] = []
        var current = StreamBlock.RawBlock()
        for event in fresh {
            // Cut blocks at about maxRawLength of raw bytes (a single larger event gets a block of its own).
            let size = StreamBlock.entryHeaderSize + event.type.utf8.count + event.metadata.count + event.data.count
            if current.count > 0 && current.raw.count + size > StreamBlock.maxRawLength {
                blocks.append(current)
                current = StreamBlock.RawBlock()
            }
            var type = event.type
            type.withUTF8 { typeBytes in
                event.metadata.withUnsafeBytes { metadata in
                    event.data.withUnsafeBytes { data in
                        current.add(version: event.version, position: event.position, id: event.id,
                                    timestampNanoseconds: event.timestampNanoseconds, json: event.contentType == .json,
                                    type: UnsafeRawBufferPointer(typeBytes), metadata: metadata, data: data)
                    }
                }
            }
        }
        blocks.append(current)
        try append(blocks: blocks, compress: compress)
    }

    /// Appends built blocks, whose versions must continue the file's exactly,
    /// with one write to the data file and one to the index.
    func append(blocks: [StreamBlock.RawBlock], compress: Bool) throws {
        guard let first = blocks.first, first.count > 0 else { return }
        guard first.firstVersion == nextVersion || (blockCount == 0 && nextVersion == 0) else {
            throw RingstoreError(.corruptData,
                                 "stream \"\(streamName)\" file ends before version \(nextVersion) but the next event to store is version \(first.firstVersion)",
                                 stream: streamName, path: pathString)
        }
        var output: [UInt8] = []
        var added: [(firstVersion: UInt64, offset: UInt64)] = []
        var expected = first.firstVersion
        for block in blocks where block.count > 0 {
            guard block.firstVersion == expected else {
                throw RingstoreError(.invalidArgument, "blocks appended to stream file \(pathString) are not consecutive",
                                     stream: streamName, path: pathString)
            }
            added.append((block.firstVersion, dataEnd + UInt64(output.count)))
            StreamBlock.encode(block, compress: compress, into: &output)
            expected = block.firstVersion + UInt64(block.count)
        }
        try output.withUnsafeBytes { try data.write($0, at: dataEnd) }
        let before = (loadedBlocks: loadedBlocks, blockCount: blockCount, dataEnd: dataEnd, nextVersion: nextVersion, hadIndex: index != nil)
        loadedBlocks? += added
        blockCount += added.count
        dataEnd += UInt64(output.count)
        nextVersion = expected
        do {
            try writeIndexEntries(added[...], from: before.blockCount)
        } catch {
            // Undo, so that the retry writes these blocks and their index entries
            // again at the same offsets (an index with a hole would misplace reads).
            (loadedBlocks, blockCount, dataEnd, nextVersion) = (before.loadedBlocks, before.blockCount, before.dataEnd, before.nextVersion)
            if !before.hadIndex, let created = index {
                created.close()
                index = nil  // created just now: made again, whole, next time
            }
            throw error
        }
    }

    /// Writes the index entries of `newBlocks`, which are blocks `first…` — or,
    /// on reaching ``indexThreshold`` blocks, creates the index file with every
    /// entry (the whole list is loaded whenever there is no index file).
    private func writeIndexEntries(_ newBlocks: ArraySlice<(firstVersion: UInt64, offset: UInt64)>, from first: Int) throws {
        var entries = newBlocks
        var start = first
        if index == nil {
            guard blockCount >= Self.indexThreshold(for: streamName) else { return }
            let all = try blockList()
            let created = try StorageFile.open(Self.indexPath(for: pathString), create: true)
            try created.truncate(to: 0)
            index = created
            entriesCreated += 1
            syncedIndexEnd = 0
            entries = all[...]
            start = 0
        }
        guard let index, !entries.isEmpty else { return }
        var bytes = [UInt8](repeating: 0, count: entries.count * Self.indexEntrySize)
        bytes.withUnsafeMutableBytes { b in
            for (i, block) in entries.enumerated() {
                b.storeBytes(of: block.firstVersion.littleEndian, toByteOffset: i * 16, as: UInt64.self)
                b.storeBytes(of: block.offset.littleEndian, toByteOffset: i * 16 + 8, as: UInt64.self)
            }
        }
        try bytes.withUnsafeBytes { try index.write($0, at: UInt64(start * Self.indexEntrySize)) }
    }

    /// Bytes of the index file in use.
    private var indexEnd: UInt64 { index == nil ? 0 : UInt64(blockCount * Self.indexEntrySize) }

    /// Makes the data and the index durable (after a failed sync, writing the
    /// unsynced bytes again first).
    func sync() throws {
        try rewriteIfSyncFailed()
        do {
            try data.syncData()
            try index?.syncData()
        } catch {
            syncFailed = true
            throw error
        }
        syncFailed = false
        syncedDataEnd = dataEnd
        syncedIndexEnd = indexEnd
    }

    /// Records that a sync covering this file failed elsewhere (a `syncfs`).
    func markSyncFailed() { syncFailed = true }

    /// After a failed sync, writes the bytes not known durable again (a `syncfs`
    /// or the next ``sync()`` then covers them).
    func rewriteIfSyncFailed() throws {
        guard syncFailed else { return }
        try data.rewrite(from: min(syncedDataEnd, dataEnd), to: dataEnd)
        if let index { try index.rewrite(from: min(syncedIndexEnd, indexEnd), to: indexEnd) }
    }

    /// Bytes in the data file and, if it exists, the index file.
    var storedBytes: UInt64 { dataEnd + (index == nil ? 0 : UInt64(blockCount * Self.indexEntrySize)) }

    // MARK: - Reading

    /// Up to `maxCount` events from version `version` (inclusive), forwards or backwards.
    /// `version` is clamped into the stored range.
    func read(from version: UInt64, direction: ReadDirection, maxCount: Int) throws -> [RecordedEvent] {
        let blocks = try blockList()
        guard maxCount > 0, let first = blocks.first?.firstVersion, nextVersion > first else { return [] }
        var wanted = min(max(version, first), nextVersion - 1)
        if direction == .forwards && version >= nextVersion { return [] }
        var result: [RecordedEvent] = []
        var blockIndex = blockContaining(wanted, in: blocks)
        while result.count < maxCount, blockIndex >= 0, blockIndex < blocks.count {
            let events = try eventsOfBlock(blockIndex, in: blocks)
            let base = blocks[blockIndex].firstVersion
            switch direction {
            case .forwards:
                let from = Int(wanted - base)
                if result.isEmpty && from == 0 && events.count <= maxCount {
                    result = events  // the whole block: share its storage rather than copy every event
                } else {
                    result += events[from...].prefix(maxCount - result.count)
                }
                wanted = base + UInt64(events.count)
                blockIndex += 1
            case .backwards:
                let from = Int(wanted - base)
                let slice = events[...from].reversed().prefix(maxCount - result.count)
                result += slice
                if base == 0 { return result }
                wanted = base - 1
                blockIndex -= 1
            }
        }
        return result
    }

    /// Index of the block holding `version` (which must be stored).
    private func blockContaining(_ version: UInt64, in blocks: [(firstVersion: UInt64, offset: UInt64)]) -> Int {
        var low = 0
        var high = blocks.count
        while low < high {
            let middle = (low + high) / 2
            if blocks[middle].firstVersion > version { high = middle } else { low = middle + 1 }
        }
        return low - 1
    }

    private func eventsOfBlock(_ i: Int, in blocks: [(firstVersion: UInt64, offset: UInt64)]) throws -> [RecordedEvent] {
        let offset = blocks[i].offset
        if let cached = cachedBlock, cached.offset == offset { return cached.events }
        let firstVersion = blocks[i].firstVersion
        let expectedCount = (i + 1 < blocks.count ? blocks[i + 1].firstVersion : nextVersion) - firstVersion
        // The cache may also hold a split segment's block of the same stream starting at the
        // same version (the same events, cut differently): only a block of this one's length will do.
        if let shared = blockCache?.block(of: streamName, containing: firstVersion), shared.firstVersion == firstVersion,
           UInt64(shared.events.count) == expectedCount {
            return shared.events
        }
        // The block's length is known from where the next one starts: one read for
        // header and body. Should the header disagree, read it as the header says.
        let end = i + 1 < blocks.count ? blocks[i + 1].offset : dataEnd
        let events: [RecordedEvent]
        if let whole = try readWholeBlock(at: offset, length: end - offset) {
            events = whole
        } else {
            events = try readBlock(at: offset, header: try readBlockHeader(at: offset))
        }
        guard UInt64(events.count) == (i + 1 < blocks.count ? blocks[i + 1].firstVersion : nextVersion) - blocks[i].firstVersion else {
            throw damaged(at: offset, "block holds \(events.count) events, the index expects otherwise")
        }
        if let blockCache {
            blockCache.insert(stream: streamName, firstVersion: firstVersion, events: events)
        } else {
            cachedBlock = (offset, events)
        }
        return events
    }

    private func readBlockHeader(at offset: UInt64) throws -> StreamBlock.Header {
        guard let header = try readBlockHeaderOrNil(at: offset) else { throw damaged(at: offset, "bad block header") }
        return header
    }

    /// Reads `bytes.count` bytes at `offset` (fewer at the end of the file), from
    /// ``readAhead`` when it holds them.
    private func read(into bytes: inout [UInt8], at offset: UInt64) throws -> Int {
        if let ahead = readAhead, offset >= ahead.offset, offset - ahead.offset <= UInt64(ahead.bytes.count) {
            let start = Int(offset - ahead.offset)
            let count = min(bytes.count, ahead.bytes.count - start)
            bytes.withUnsafeMutableBytes { target in
                ahead.bytes.withUnsafeBytes { source in
                    target.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[start..<(start + count)]))
                }
            }
            return count
        }
        return try bytes.withUnsafeMutableBytes { try data.read(into: $0, at: offset) }
    }

    private func readBlockHeaderOrNil(at offset: UInt64) throws -> StreamBlock.Header? {
        var bytes = [UInt8](repeating: 0, count: StreamBlock.headerSize)
        guard try read(into: &bytes, at: offset) == bytes.count else { return nil }
        return try? StreamBlock.parseHeader(bytes).get()
    }

    /// The block at `offset` read with one `pread` of `length` bytes, or nil if
    /// its header does not say it is that long (the caller reads it the slow way).
    private func readWholeBlock(at offset: UInt64, length: UInt64) throws -> [RecordedEvent]? {
        guard length >= UInt64(StreamBlock.headerSize), length <= UInt64(StreamBlock.headerSize + StreamBlock.maxRawLength + 1024) else { return nil }
        var bytes = [UInt8](repeating: 0, count: Int(length))
        guard try read(into: &bytes, at: offset) == bytes.count,
              case .success(let header) = StreamBlock.parseHeader(bytes[..<StreamBlock.headerSize]),
              UInt64(header.totalLength) == length else { return nil }
        return try decode(bytes, at: offset)
    }

    private func readBlock(at offset: UInt64, header: StreamBlock.Header) throws -> [RecordedEvent] {
        var bytes = [UInt8](repeating: 0, count: header.totalLength)
        guard try read(into: &bytes, at: offset) == bytes.count else {
            throw damaged(at: offset, "block runs past the end of the file")
        }
        return try decode(bytes, at: offset)
    }

    private func decode(_ block: [UInt8], at offset: UInt64) throws -> [RecordedEvent] {
        switch StreamBlock.decode(block, stream: streamName) {
        case .success(let events): return events
        case .failure(let error): throw damaged(at: offset, "\(error)")
        }
    }

    private func damaged(at offset: UInt64, _ why: String) -> RingstoreError {
        RingstoreError(.corruptData, "stream file \(path) is damaged at offset \(offset): \(why)",
                       stream: streamName, path: pathString, offset: offset)
    }
}
