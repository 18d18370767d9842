/// Where stream files closed by the open-file cache ended, by stream, so that
/// reopening one is an `open` and an `fstat` instead of reading its header,
/// index and last block again (see ``StreamFile/reopen(at:stream:resume:)``).
///
/// With thousands of streams and a few hundred open files the splitter reopens
/// files all the time, so this holds an entry for nearly every stream written
/// this session: at 100,000 streams its size matters. An entry is therefore
/// packed into 32 bytes (a full ``StreamFile/ResumePoint`` with its probe takes
/// 72), and the rare files whose numbers do not fit are not remembered: opening
/// them takes the full path, which is always correct. Block lists (only files
/// without an index have them in memory) are kept apart, for a bounded number
/// of files. At most `capacity` entries are kept; beyond it an arbitrary one
/// is forgotten. The default capacity fills a hash table of 2^17 buckets: one
/// more entry would double the table.
struct ClosedFileMemo {
    /// One closed file, packed.
    private struct Entry {
        var dataEnd: UInt64
        var nextVersion: UInt64
        /// `dataEnd` minus the data bytes known durable.
        var unsyncedDataBytes: UInt32
        var blockCount: UInt32
        /// Index entries known durable.
        var syncedIndexEntries: UInt32
        var headerLength: UInt16
        /// The collision probe of the file's name (see ``StreamNaming``).
        var probe: UInt8
        /// Bit 0: a sync failed since the data was last known durable; bit 1: the file has an index.
        var flags: UInt8
    }

    static let defaultCapacity = (1 << 17) / 4 * 3
    static let defaultBlockListCapacity = 1 << 14

    let capacity: Int
    let blockListCapacity: Int
    private var entries: [String: Entry] = [:]
    private var blockLists: [String: [(firstVersion: UInt64, offset: UInt64)]] = [:]

    init(capacity: Int = Self.defaultCapacity, blockListCapacity: Int = Self.defaultBlockListCapacity) {
        self.capacity = capacity
        self.blockListCapacity = blockListCapacity
    }

    var count: Int { entries.count }
    var blockListCount: Int { blockLists.count }

    /// The remembered end of `stream`'s file and its name's probe, if any.
    func resumePoint(of stream: String) -> (probe: Int, resume: StreamFile.ResumePoint)? {
        guard let entry = entries[stream] else { return nil }
        let resume = StreamFile.ResumePoint(
            headerLength: UInt64(entry.headerLength), dataEnd: entry.dataEnd, nextVersion: entry.nextVersion,
            blockCount: Int(entry.blockCount), blocks: blockLists[stream],
            syncedDataEnd: entry.dataEnd - UInt64(entry.unsyncedDataBytes),
            syncedIndexEnd: UInt64(entry.syncedIndexEntries) * UInt64(StreamFile.indexEntrySize),
            syncFailed: entry.flags & 1 != 0, hasIndex: entry.flags & 2 != 0)
        return (Int(entry.probe), resume)
    }

    /// Records where `stream`'s file ended when it closed. A file closed late (a
    /// reader held it) may report an older end than one closed since: the
    /// larger end wins (``StreamFile/reopen(at:stream:resume:)`` checks the size anyway).
    mutating func remember(_ stream: String, probe: Int, resume: StreamFile.ResumePoint) {
        if let known = entries[stream], known.dataEnd > resume.dataEnd { return }
        let indexEntrySize = UInt64(StreamFile.indexEntrySize)
        guard let packedProbe = UInt8(exactly: probe),
              let headerLength = UInt16(exactly: resume.headerLength),
              let blockCount = UInt32(exactly: resume.blockCount),
              resume.syncedDataEnd <= resume.dataEnd,
              let unsynced = UInt32(exactly: resume.dataEnd - resume.syncedDataEnd),
              resume.syncedIndexEnd % indexEntrySize == 0,
              let syncedIndexEntries = UInt32(exactly: resume.syncedIndexEnd / indexEntrySize)
        else {
            forget(stream)  // an older entry would be wrong now
            return
        }
        if entries[stream] == nil, entries.count >= capacity {
            forget(entries.keys[entries.startIndex])
        }
        entries[stream] = Entry(dataEnd: resume.dataEnd, nextVersion: resume.nextVersion, unsyncedDataBytes: unsynced,
                                blockCount: blockCount, syncedIndexEntries: syncedIndexEntries, headerLength: headerLength,
                                probe: packedProbe, flags: (resume.syncFailed ? 1 : 0) | (resume.hasIndex ? 2 : 0))
        if let blocks = resume.blocks, blockLists[stream] != nil || blockLists.count < blockListCapacity {
            blockLists[stream] = blocks
        } else {
            blockLists[stream] = nil
        }
    }

    mutating func forget(_ stream: String) {
        entries[stream] = nil
        blockLists[stream] = nil
    }
}
