import SystemPackage

/// Opening a stream file: the quick path through its index's last entry, and
/// recovery (rebuilding a damaged index, cutting a torn last block the journal
/// or the split segments can rebuild) when that does not check out.
extension StreamFile {
    /// Opens an existing stream file, checking its header and index and cutting
    /// a torn last block whose events the journal still holds (first journal
    /// position from `replayFrom` on) or the split segments do (first version
    /// from `segmentsHoldFrom` on: a move was interrupted).
    /// `expecting` names the stream looked for at this path: a file no longer
    /// than its header that holds no intact header throws ``NeverWritten``.
    /// `heldElsewhere` says whether the journal or the segments hold every
    /// version of that stream from 0 on (asked only when the header is damaged).
    /// `dictionary`: the store's ``StreamFileDictionary``, with which the checks
    /// decode blocks compressed against it (without it such a block would look
    /// damaged, and one the journal could rebuild would be cut).
    static func open(at pathString: String, replayFrom: UInt64, segmentsHoldFrom: UInt64 = .max,
                     expecting stream: String? = nil, heldElsewhere: () -> Bool = { false },
                     dictionary: CompressionDictionary? = nil) throws -> StreamFile {
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
        file.dictionary = dictionary
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
    func recover(headerLength: UInt64, replayFrom: UInt64, segmentsHoldFrom: UInt64) throws {
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
                let version = LittleEndian.load(UInt64.self, from: e, at: i * 16)
                let offset = LittleEndian.load(UInt64.self, from: e, at: i * 16 + 8)
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
        // Blocks the journal or the split segments can rebuild are checked one by one
        // below, not taken from the index: a move's blocks name journal positions the
        // checkpoint passed long ago, yet until the file's sync they may be torn.
        // (Both tests rise along the file, so the entries they hold are a suffix.)
        let firstReplayable = loaded.partitioningIndex { entry in
            guard let header = (try? readBlockHeaderOrNil(at: entry.offset)) ?? nil, header.firstVersion == entry.firstVersion else { return true }
            return header.firstPosition >= replayFrom || header.firstVersion >= segmentsHoldFrom
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
    static func holdsOnlyRebuildableBlocks(_ data: StorageFile, path: FilePath, stream: String, headerLength: UInt64,
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
                    offsets.append(LittleEndian.load(UInt64.self, from: e, at: i * indexEntrySize + 8))
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
}
