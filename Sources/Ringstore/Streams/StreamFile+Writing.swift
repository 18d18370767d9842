import SystemPackage

/// Appending blocks and making them durable.
extension StreamFile {
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
        var builder = StreamBlock.Builder()
        for event in fresh { builder.add(event) }
        try append(blocks: builder.finish(), compress: compress)
    }

    /// Appends built blocks, whose versions must continue the file's exactly,
    /// with one write to the data file and one to the index.
    func append(blocks: [StreamBlock.RawBlock], compress: Bool, acceleration: Int32 = 1) throws {
        try append(sources: blocks, compress: compress, acceleration: acceleration)
    }

    /// ``append(blocks:compress:acceleration:)`` for any kind of block source
    /// (compaction mixes built blocks with encoded ones it copies as they are).
    /// `dictionary`: the store's ``StreamFileDictionary`` (compaction's new one) for the blocks built now.
    func append<Block: StreamBlockSource>(sources blocks: [Block], compress: Bool, acceleration: Int32 = 1,
                                          dictionary: CompressionDictionary? = nil) throws {
        guard let first = blocks.first, first.count > 0 else { return }
        guard first.firstVersion == nextVersion || (blockCount == 0 && nextVersion == 0) else {
            throw RingstoreError(.corruptData,
                                 "stream \"\(streamName)\" file ends before version \(nextVersion) but the next event to store is version \(first.firstVersion)",
                                 stream: streamName, path: pathString)
        }
        // A deferred header goes first, in the same write (``dataEnd`` already counts it).
        var output: [UInt8] = unwrittenHeader ?? []
        let headerBytes = output.count
        var added: [(firstVersion: UInt64, offset: UInt64)] = []
        var expected = first.firstVersion
        for block in blocks where block.count > 0 {
            guard block.firstVersion == expected else {
                throw RingstoreError(.invalidArgument, "blocks appended to stream file \(pathString) are not consecutive",
                                     stream: streamName, path: pathString)
            }
            added.append((block.firstVersion, dataEnd + UInt64(output.count - headerBytes)))
            block.encode(compress: compress, acceleration: acceleration, dictionary: dictionary, into: &output)
            expected = block.firstVersion + UInt64(block.count)
        }
        try output.withUnsafeBytes { try data.write($0, at: dataEnd - UInt64(headerBytes)) }
        unwrittenHeader = nil
        let before = (loadedBlocks: loadedBlocks, blockCount: blockCount, dataEnd: dataEnd, nextVersion: nextVersion, hadIndex: index != nil)
        loadedBlocks? += added
        blockCount += added.count
        dataEnd += UInt64(output.count - headerBytes)
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

    /// Writes the data's and the index's dirty pages back and waits for them:
    /// durable once the file-system journal commit that follows returns
    /// (``FileSystemCommit``).
    func writeBackAndWait() throws {
        try data.writeBackAndWait()
        try index?.writeBackAndWait()
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
}
