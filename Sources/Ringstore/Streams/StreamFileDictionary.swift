import SystemPackage

/// The file `streams/dictionary`: the ``CompressionDictionary`` that the
/// small blocks of a compacted store's stream files are compressed against.
///
///     offset size  field
///      0     8     magic "RSDICT01"
///      8     …     the dictionary twice, each copy `[length u32][CRC32C u32][bytes]`
///                  zero-padded to 8 (``CompressionDictionary/encodeArea(_:)``)
///
/// Two writers make it. `ringstore-admin compact` writes a new one inside
/// the new `streams/` folder it swaps in whole (``CompactionSwitch``), so the
/// file and the blocks that need it are replaced together or not at all. A
/// running store without one adopts its split segments' dictionary the first
/// time the segment mover builds a block small enough to use it
/// (``writeDurably(_:in:)``, ``StreamDirectory/adoptDictionary(_:)``): the
/// file is durable under its name before any block compressed against it is
/// written, so a store without the file has no such blocks.
enum StreamFileDictionary {
    static let fileName = "dictionary"
    /// What ``writeDurably(_:in:)`` writes first, under `streams/`: left only by
    /// a crash before its rename, and removed by the next open (`verify` and
    /// `dump` look only into `streams/`' sub-folders).
    static let unfinishedName = "dictionary.new"
    static let magic: [UInt8] = Array("RSDICT01".utf8)

    /// What reading the file found.
    struct Reading {
        /// The dictionary of the first intact copy; nil when neither is intact.
        var dictionary: CompressionDictionary?
        /// Offsets in the file of what is damaged (a copy, or 0 for the magic or a cut file), each with what is wrong.
        var damage: [(offset: UInt64, what: String)]
    }

    /// The file's path in the store folder `root`.
    static func path(in root: FilePath) -> FilePath { root.appending(StreamNaming.folder).appending(fileName) }

    /// Reads the file of the store at `root`; nil when there is none.
    static func read(in root: FilePath) throws -> Reading? {
        let path = path(in: root)
        guard StorageDirectory.exists(path) else { return nil }
        let file = try StorageFile.open(path)
        defer { file.close() }
        let size = try file.size()
        let limit = UInt64(magic.count + CompressionDictionary.maxAreaLength)
        guard size <= limit else {
            return Reading(dictionary: nil, damage: [(0, "the file is \(size) bytes long, longer than any dictionary's (\(limit))")])
        }
        var bytes = [UInt8](repeating: 0, count: Int(size))
        let read = try bytes.withUnsafeMutableBytes { try file.read(into: $0, at: 0) }
        guard read == bytes.count, bytes.count >= magic.count + 16, Array(bytes.prefix(magic.count)) == magic else {
            return Reading(dictionary: nil, damage: [(0, "the file is cut short or its magic is wrong")])
        }
        let reading = bytes.withUnsafeBytes { CompressionDictionary.parseArea(UnsafeRawBufferPointer(rebasing: $0[magic.count...])) }
        let damage = reading.damagedCopies.map { (UInt64(magic.count + $0), "a copy of the dictionary is damaged (checksum mismatch)") }
        return Reading(dictionary: reading.dictionary, damage: damage)
    }

    /// Writes `dictionary` as the file of the store folder `root` (its
    /// `streams/` exists; the file does not). Not synced here: compaction's one
    /// `syncfs` makes it durable with the stream files, before its commit.
    static func write(_ dictionary: CompressionDictionary, in root: FilePath) throws {
        try write(dictionary, at: path(in: root), sync: false)
    }

    private static func write(_ dictionary: CompressionDictionary, at path: FilePath, sync: Bool) throws {
        try StorageFile.create(path, holding: magic + CompressionDictionary.encodeArea(dictionary), sync: sync)
    }

    /// Writes `dictionary` as the file of the running store at `root`, durably:
    /// when this returns, the file is there after any crash or power cut.
    ///
    /// The order, and what a cut between two steps leaves:
    /// 1. `streams/dictionary.new` is written and synced (`fdatasync`) — a cut
    ///    leaves at most that file, removed at the next open; no block uses a
    ///    dictionary yet;
    /// 2. it is renamed to `streams/dictionary` — a cut may undo the rename
    ///    (the folder is not synced yet): the same as 1;
    /// 3. `streams/` is synced — from here the file survives, complete (its
    ///    bytes were synced before it got its name).
    /// Only then does the caller compress blocks against it; their stream files
    /// are synced later (the checkpoint, the mover's batch sync), never before
    /// step 3.
    static func writeDurably(_ dictionary: CompressionDictionary, in root: FilePath) throws {
        try StorageFile.replaceDurably(path(in: root), with: magic + CompressionDictionary.encodeArea(dictionary),
                                       via: root.appending(StreamNaming.folder).appending(unfinishedName))
    }

    /// Removes what a crash in ``writeDurably(_:in:)`` before its rename left.
    static func removeUnfinished(in root: FilePath) throws {
        let unfinished = root.appending(StreamNaming.folder).appending(unfinishedName)
        if StorageDirectory.exists(unfinished) { try StorageDirectory.removeFile(unfinished) }
    }
}
