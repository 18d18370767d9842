import SystemPackage

/// Checks one stream file (`streams/ab/<hash>.stream`) and its sidecar index:
/// the header, every block (header and payload CRC, decompression, entries),
/// versions contiguous from block to block, journal positions increasing, and
/// each index entry against its block. Read-only; large sequential reads.
struct StreamFileVerifier {
    let directory: FilePath
    /// The store's ``StreamFileDictionary``, for the blocks compressed against it.
    var dictionary: CompressionDictionary? = nil
    /// The stream whose name hashes to a file name's hash (``StreamNaming/hash(_:)``), from
    /// the catalog: what a file whose header is damaged was created for.
    var streamNamed: (_ hash: String) -> String? = { _ in nil }
    /// Whether the journal holds a stream whole, from version 0 (``JournalVerifier/Summary/streamsFromVersionZero``).
    var journalHoldsWhole: (_ stream: String) -> Bool = { _ in false }

    struct Outcome {
        var name: String?
        var base: UInt64 = 0
        /// Events stored (versions `base..<base + events`).
        var events = 0
        var lastPosition: UInt64?
        /// Positions before the checkpoint, in version order.
        var covered = PositionDigest()
        /// A damaged block left some positions unknown.
        var unknownPositions = false
        var blocks = 0
        var bytes: UInt64 = 0
        var indexBytes: UInt64 = 0
        var hasIndex = false
        var storedBytes: UInt64 = 0
        /// In a store not closed cleanly: findings (not marked harmless) about blocks
        /// from a version on, which are harmless if the split segments hold the
        /// stream from that version on (the caller knows once it has read them).
        var rebuildable: [Rebuildable] = []
        /// In a store not closed cleanly, a damaged header of a file named for this stream
        /// (from the catalog, by hash) that its blocks did not show to be the journal's
        /// alone: harmless if the segments or the stream's bucket chain hold it from
        /// version 0 (as opening decides; the caller knows once it has read them).
        var damagedHeaderOf: String?
    }

    /// A finding (its index in the problem list) about the blocks from `firstVersion` on.
    struct Rebuildable {
        var problem: Int
        var firstVersion: UInt64
    }

    /// `relative`: the file's path relative to the store folder. `replayFrom`: the
    /// checkpoint of a store that was not closed cleanly (`.max` otherwise): a block
    /// from there on, or a torn last block, is one opening checks and cuts (the
    /// journal supplies its events again), so findings there are harmless.
    /// `checkpoint`: positions before it are digested (the global index must name them).
    /// `windows`: read buffers reused from file to file (data file, index file).
    func verify(relative: String, replayFrom: UInt64, checkpoint: UInt64, checker: inout BlockChecker,
                windows: (data: ReadWindow, index: ReadWindow), bytesRead: inout UInt64,
                into problems: inout [MaintenanceProblem]) -> Outcome {
        var outcome = Outcome()
        var replayable = false
        /// The first version of the block being checked (nil: before the blocks).
        var blockVersion: UInt64?
        func problem(_ offset: UInt64?, _ what: String, file: String = relative) {
            if !replayable, replayFrom != .max, let blockVersion {
                outcome.rebuildable.append(Rebuildable(problem: problems.count, firstVersion: blockVersion))
            }
            problems.append(MaintenanceProblem(file: file, offset: offset, what: what, stream: outcome.name, harmless: replayable))
        }
        let file: StorageFile
        do { file = try StorageFile.open(directory.appending(relative)) } catch {
            problem(nil, "cannot open: \(error)")
            return outcome
        }
        defer { file.close() }
        do {
            var reader = try SequentialReader(file: file, window: windows.data)
            outcome.bytes = reader.size
            defer { bytesRead += reader.bytesRead }
            // Header: magic, format version, name length, name, padding, CRC. A file that holds
            // no more than a torn header, in a store not closed cleanly, is one whose creation a
            // cut interrupted (header and first blocks go in one write, synced later): opening
            // creates it again, and its versions are where the move took them from. (Were
            // versions really lost, the global index names them and no file holds them.)
            let tornCreation = replayFrom != .max
            let whatTorn = " (the store was not closed cleanly: a file whose creation a cut tore, which opening creates again)"
            /// Whether a file whose header is damaged, in a store not closed cleanly, holds only
            /// blocks the journal supplies again: opening then takes it as never written
            /// (the journal holds the stream whole, or
            /// ``StreamFile/holdsOnlyRebuildableBlocks(_:path:stream:headerLength:indexPath:replayFrom:segmentsHoldFrom:)``;
            /// the segments' part is weighed once they are read: ``Outcome/damagedHeaderOf``).
            func neverWritten() -> Bool {
                guard tornCreation else { return false }
                let fileName = relative.split(separator: "/").last.map(String.init) ?? relative
                // A stream the catalog does not name: its record was in the catalog's unsynced tail
                // too, and a checkpoint never passes a stream's records (nor a move its entries)
                // before its record is synced, so everything the file held is after the checkpoint.
                guard let name = streamNamed(String(fileName.prefix(32))) else { return true }
                let path = directory.appending(relative)
                outcome.damagedHeaderOf = name
                if journalHoldsWhole(name) { return true }
                return (try? StreamFile.holdsOnlyRebuildableBlocks(
                    file, path: path, stream: name, headerLength: StreamFile.headerLength(nameBytes: name.utf8.count),
                    indexPath: StreamFile.indexPath(for: path.string), replayFrom: replayFrom, segmentsHoldFrom: .max)) ?? false
            }
            let whatRebuildable = " (the store was not closed cleanly, and the file holds only blocks the journal supplies again: opening takes it as never written)"
            guard let fixed = try reader.bytes(at: 0, count: 16) else {
                replayable = tornCreation
                problem(0, "file is shorter than a stream file header" + (tornCreation ? whatTorn : ""))
                return outcome
            }
            guard fixed.prefix(8).elementsEqual(StreamFile.magic) else {
                replayable = neverWritten()
                problem(0, "bad magic (not a stream file)" + (replayable ? whatRebuildable : "")); return outcome
            }
            let version = UInt32(littleEndian: fixed.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
            guard version == StreamFile.formatVersion else { problem(8, "unsupported format version \(version)"); return outcome }
            let nameCount = Int(UInt32(littleEndian: fixed.loadUnaligned(fromByteOffset: 12, as: UInt32.self)))
            guard (1...NameRules.maxStreamNameBytes).contains(nameCount) else { problem(12, "stream name length \(nameCount) is out of range"); return outcome }
            let headerLength = StreamFile.headerLength(nameBytes: nameCount)
            guard let header = try reader.bytes(at: 0, count: Int(headerLength)) else {
                replayable = tornCreation
                problem(0, "file ends inside its header" + (tornCreation ? whatTorn : "")); return outcome
            }
            let crcOffset = Int(headerLength) - 8
            let storedCRC = UInt32(littleEndian: header.loadUnaligned(fromByteOffset: crcOffset, as: UInt32.self))
            guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: header[0..<crcOffset])) == storedCRC else {
                let empty = tornCreation && reader.size <= headerLength
                replayable = empty || neverWritten()
                problem(0, "header checksum mismatch" + (empty ? whatTorn : replayable ? whatRebuildable : "")); return outcome
            }
            if header.loadUnaligned(fromByteOffset: crcOffset + 4, as: UInt32.self) != 0 {
                problem(UInt64(crcOffset + 4), "reserved header bytes are not zero")
            }
            let name = String(decoding: UnsafeRawBufferPointer(rebasing: header[16..<(16 + nameCount)]), as: UTF8.self)
            outcome.name = name
            let fileName = relative.split(separator: "/").last.map(String.init) ?? relative
            if !fileName.hasPrefix(StreamNaming.hash(name)) {
                problem(16, "the file's name is not the hash of the stream name in its header (\"\(name.prefix(80))\")")
            }
            // Blocks, back to back.
            var offset = headerLength
            var next: UInt64? = nil
            var blockList: [(firstVersion: UInt64, offset: UInt64)] = []
            while offset < reader.size {
                blockVersion = next ?? 0
                guard let head = try reader.bytes(at: offset, count: StreamBlock.headerSize) else {
                    replayable = replayFrom != .max
                    problem(offset, "\(reader.size - offset) bytes after the last block are no whole block header")
                    break
                }
                let parsed: StreamBlock.Header
                switch StreamBlock.parseHeader(head) {
                case .success(let h):
                    parsed = h
                    replayable = h.firstPosition >= replayFrom
                    blockVersion = h.firstVersion
                case .failure(let error):
                    // An unclean store's torn last block: cut at open if nothing after it is intact.
                    replayable = replayFrom != .max
                    problem(offset, "block header: \(error); the rest of the file (\(reader.size - offset) bytes) was not checked")
                    offset = reader.size
                    continue
                }
                // Bytes 44-47 name the dictionary of a block compressed against one
                // (checked when it is decoded); in any other block they are zero.
                if !parsed.dictionary && parsed.dictionaryID != 0 {
                    problem(offset + 44, "reserved block header bytes are not zero")
                }
                if let expected = next, parsed.firstVersion != expected {
                    problem(offset, "block starts at version \(parsed.firstVersion), expected \(expected) (versions must be contiguous)")
                }
                if blockList.isEmpty { outcome.base = parsed.firstVersion }
                let storedStart = offset + UInt64(StreamBlock.headerSize)
                if let stored = try reader.bytes(at: storedStart, count: parsed.storedLength) {
                    var run = PositionRun(limit: checkpoint)
                    if let why = checker.check(header: parsed, stored: stored, dictionary: dictionary, run: &run) {
                        problem(offset, why)
                        // Keep the version count right, so later checks do not cascade.
                        outcome.unknownPositions = true
                    } else {
                        if let last = outcome.lastPosition, let first = run.first, first <= last {
                            problem(offset, "block's first journal position \(first) is not after the previous block's last (\(last))")
                        }
                        outcome.covered.append(run.covered)
                        if let last = run.last { outcome.lastPosition = last }
                    }
                    outcome.events += parsed.count
                } else {
                    problem(offset, "block of \(parsed.totalLength) bytes runs past the end of the file")
                    break
                }
                outcome.storedBytes += UInt64(parsed.storedLength)
                blockList.append((parsed.firstVersion, offset))
                next = parsed.firstVersion + UInt64(parsed.count)
                offset += UInt64(parsed.totalLength)
            }
            outcome.blocks = blockList.count
            replayable = false
            blockVersion = nil
            try verifyIndex(relative: relative + ".idx", blocks: blockList, end: next ?? 0, lagging: replayFrom != .max, window: windows.index,
                            bytesRead: &bytesRead, outcome: &outcome, problems: &problems)
        } catch {
            problem(nil, "read failed: \(error)")
        }
        return outcome
    }

    /// The sidecar index, if there is one: one 16-byte entry per block, each matching its block.
    /// `lagging`: the store was not closed cleanly, so the index may end before the data
    /// file's last blocks (opening picks them up); a missing entry is then harmless.
    /// `end`: the version after the data file's last block.
    private func verifyIndex(relative: String, blocks: [(firstVersion: UInt64, offset: UInt64)], end: UInt64, lagging: Bool, window: ReadWindow,
                             bytesRead: inout UInt64,
                             outcome: inout Outcome, problems: inout [MaintenanceProblem]) throws {
        let path = directory.appending(relative)
        guard StorageDirectory.exists(path) else { return }
        outcome.hasIndex = true
        let file = try StorageFile.open(path)
        defer { file.close() }
        var reader = try SequentialReader(file: file, window: window)
        defer { bytesRead += reader.bytesRead }
        outcome.indexBytes = reader.size
        /// `blockVersion`: the first version of the blocks the finding is about.
        func problem(_ offset: UInt64?, _ what: String, harmless: Bool = false, blockVersion: UInt64? = nil) {
            if !harmless, lagging, let blockVersion {
                outcome.rebuildable.append(Rebuildable(problem: problems.count, firstVersion: blockVersion))
            }
            problems.append(MaintenanceProblem(file: relative, offset: offset, what: what, stream: outcome.name, harmless: harmless))
        }
        if reader.size % UInt64(StreamFile.indexEntrySize) != 0 {
            problem(reader.size - reader.size % UInt64(StreamFile.indexEntrySize), "index size \(reader.size) is not a whole number of 16-byte entries")
        }
        let count = Int(reader.size) / StreamFile.indexEntrySize
        if count != blocks.count {
            // More entries than blocks: those past the data file's end name blocks a power cut
            // lost, which opening drops with them.
            problem(nil, "index has \(count) entries but the data file has \(blocks.count) blocks", harmless: lagging && count < blocks.count,
                    blockVersion: end)
        }
        for i in 0..<min(count, blocks.count) {
            let at = UInt64(i * StreamFile.indexEntrySize)
            guard let entry = try reader.bytes(at: at, count: StreamFile.indexEntrySize) else { break }
            let version = UInt64(littleEndian: entry.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
            let offset = UInt64(littleEndian: entry.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            if version != blocks[i].firstVersion || offset != blocks[i].offset {
                problem(at, "index entry \(i) says version \(version) at offset \(offset), but block \(i) is version \(blocks[i].firstVersion) at offset \(blocks[i].offset)",
                        blockVersion: blocks[i].firstVersion)
            }
        }
    }
}
