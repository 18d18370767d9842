import SystemPackage

/// The file `streams/dictionary`: the ``CompressionDictionary`` that the
/// small blocks of a compacted store's stream files are compressed against.
///
///     offset size  field
///      0     8     magic "RSDICT01"
///      8     …     the dictionary twice, each copy `[length u32][CRC32C u32][bytes]`
///                  zero-padded to 8 (``CompressionDictionary/encodeArea(_:)``)
///
/// Only `ringstore-admin compact` writes it, inside the new `streams/`
/// folder it swaps in whole (``CompactionSwitch``), so the file and the
/// blocks that need it are replaced together or not at all. A store without
/// it has no such blocks. Stream files written by the running store (the
/// segment mover's 64 KiB blocks) do not use it.
enum StreamFileDictionary {
    static let fileName = "dictionary"
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
        let file = try StorageFile.open(path(in: root), create: true, exclusive: true)
        defer { file.close() }
        let bytes = magic + CompressionDictionary.encodeArea(dictionary)
        try bytes.withUnsafeBytes { try file.write($0, at: 0) }
    }
}
