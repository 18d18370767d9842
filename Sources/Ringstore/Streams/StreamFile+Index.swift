import SystemPackage

/// The block list: the sidecar index file once there is one, else the block
/// headers hopped one by one.
extension StreamFile {
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

    /// Index entry `i`: (first version, block offset).
    func indexEntry(_ i: Int) throws -> (UInt64, UInt64)? {
        guard let index else { return nil }
        var entry = [UInt8](repeating: 0, count: Self.indexEntrySize)
        guard try entry.withUnsafeMutableBytes({ try index.read(into: $0, at: UInt64(i * Self.indexEntrySize)) }) == entry.count else { return nil }
        return entry.withUnsafeBytes {
            (LittleEndian.load(UInt64.self, from: $0, at: 0),
             LittleEndian.load(UInt64.self, from: $0, at: 8))
        }
    }

    /// Every block's (first version, offset), loading the index file if needed.
    /// Every block's offset (tests: to damage a chosen block).
    func blockOffsetsForTesting() throws -> [UInt64] { try blockList().map(\.offset) }

    func blockList() throws -> [(firstVersion: UInt64, offset: UInt64)] {
        if let loadedBlocks { return loadedBlocks }
        var list: [(firstVersion: UInt64, offset: UInt64)] = []
        list.reserveCapacity(blockCount)
        if let index {
            var entries = [UInt8](repeating: 0, count: blockCount * Self.indexEntrySize)
            _ = try entries.withUnsafeMutableBytes { try index.read(into: $0, at: 0) }
            entries.withUnsafeBytes { e in
                for i in 0..<blockCount {
                    list.append((LittleEndian.load(UInt64.self, from: e, at: i * 16),
                                 LittleEndian.load(UInt64.self, from: e, at: i * 16 + 8)))
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

    /// Writes the index entries of `newBlocks`, which are blocks `first…` — or,
    /// on reaching ``indexThreshold`` blocks, creates the index file with every
    /// entry (the whole list is loaded whenever there is no index file).
    func writeIndexEntries(_ newBlocks: ArraySlice<(firstVersion: UInt64, offset: UInt64)>, from first: Int) throws {
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
                LittleEndian.store(block.firstVersion, into: b, at: i * 16)
                LittleEndian.store(block.offset, into: b, at: i * 16 + 8)
            }
        }
        try bytes.withUnsafeBytes { try index.write($0, at: UInt64(start * Self.indexEntrySize)) }
    }

    /// Bytes of the index file in use.
    var indexEnd: UInt64 { index == nil ? 0 : UInt64(blockCount * Self.indexEntrySize) }
}
