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
///
/// One concern per file: the header (`StreamFile+Header`), opening and
/// recovery (`+Opening`), reopening from a ``ResumePoint`` (`+ResumePoint`),
/// the block list and index file (`+Index`), appending and syncing
/// (`+Writing`), reading (`+Reading`). The state below is shared by them, so
/// it is internal rather than private; nothing outside these files touches it.
final class StreamFile: @unchecked Sendable {
    static let magic: [UInt8] = Array("RSSTRM01".utf8)
    static let formatVersion: UInt32 = 2
    static let indexEntrySize = 16
    /// Fewest blocks from which on the sidecar index file is kept.
    static let indexThreshold = 16

    let path: FilePath
    /// `path` as a string, kept because converting a `FilePath` is not free.
    let pathString: String
    let streamName: String
    let data: StorageFile
    var index: StorageFile?
    /// In-memory copy of the index, (first version, offset) per block — loaded
    /// only when a read needs it: opening a file to append to it (what the
    /// splitter does, over and over, for thousands of streams) reads just the
    /// index's last entry, so its cost does not grow with the stream.
    var loadedBlocks: [(firstVersion: UInt64, offset: UInt64)]?
    var blockCount = 0
    var headerLength: UInt64 = 0
    /// A header not written yet (``create(at:stream:deferHeader:)``): the first
    /// append writes it with its blocks, in one write.
    var unwrittenHeader: [UInt8]?
    var dataEnd: UInt64
    var nextVersion: UInt64
    /// Data and index bytes known durable, and whether a sync failed since: then
    /// the next sync writes everything after them again first (see ``StorageFile/rewrite(from:to:)``).
    var syncedDataEnd: UInt64 = 0
    var syncedIndexEnd: UInt64 = 0
    var syncFailed = false
    /// Directory entries this file created (the data file, its index file), and
    /// how many of them a sync of the folder is known to cover: a file's own
    /// `fdatasync` does not make its name durable (see ``StreamDirectory/syncAll(dirty:)``).
    var entriesCreated = 0
    var entriesSynced = 0
    /// The most recently decoded block (sequential reads revisit it), kept only
    /// when there is no shared ``blockCache``: with thousands of files open,
    /// one decoded block each would hold far more memory than the shared budget.
    var cachedBlock: (offset: UInt64, events: [RecordedEvent])?
    /// The store's shared cache of decoded blocks, if any (set by ``StreamDirectory``).
    var blockCache: BlockCache?
    /// Where the store's ``StreamFileDictionary`` is found, for blocks
    /// compressed against it (the directory's, set by ``StreamDirectory``).
    var dictionarySlot: DictionarySlot?
    /// The store's ``StreamFileDictionary``, if it has one by now; setting it
    /// gives the file a slot of its own (compaction, `verify`, tests).
    var dictionary: CompressionDictionary? {
        get { dictionarySlot?.dictionary }
        set { dictionarySlot = newValue.map { DictionarySlot($0) } }
    }
    /// A small file's bytes, read whole while ``recover(headerLength:replayFrom:segmentsHoldFrom:)``
    /// hops its block headers: one read instead of one per block.
    var readAhead: (offset: UInt64, bytes: [UInt8])?
    /// Files up to this size are read whole when opened without an index.
    static let readAheadLimit: UInt64 = 256 << 10

    init(path: FilePath, streamName: String, data: StorageFile, index: StorageFile?, dataEnd: UInt64) {
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

    func close() {
        data.close()
        index?.close()
    }
}
