import SystemPackage

/// A stream file's header (its layout is in ``StreamFile``): written when the
/// file is created, read and checked when it is opened.
extension StreamFile {
    /// Bytes of the header of a file for a stream whose name has `nameBytes` bytes.
    static func headerLength(nameBytes: Int) -> UInt64 {
        UInt64(16 + nameBytes + (8 - (16 + nameBytes) % 8) % 8 + 8)
    }

    /// Creates the file for `stream` (which must not exist yet). Not synced:
    /// the splitter syncs files (and their folders) before each checkpoint.
    ///
    /// `deferHeader`: the header is not written now but with the first append's
    /// blocks, in the same write (``unwrittenHeader``); for a writer that always
    /// appends right after creating (compaction, whose new files count only
    /// once synced and committed whole), it saves a system call per file.
    static func create(at pathString: String, stream: String, deferHeader: Bool = false) throws -> StreamFile {
        let path = FilePath(pathString)
        let name = Array(stream.utf8)
        var header = magic
        LittleEndian.append(formatVersion, to: &header)
        LittleEndian.append(UInt32(name.count), to: &header)
        header += name
        header += [UInt8](repeating: 0, count: (8 - header.count % 8) % 8)
        LittleEndian.append(CRC32C.checksum(header), to: &header)
        header += [0, 0, 0, 0]
        let data = try StorageFile.open(path, create: true, exclusive: true)
        if deferHeader {
            let file = StreamFile(path: path, streamName: stream, data: data, index: nil, dataEnd: UInt64(header.count))
            file.headerLength = UInt64(header.count)
            file.loadedBlocks = []
            file.entriesCreated = 1
            file.unwrittenHeader = header
            return file
        }
        do {
            // No index file can be left over here: one is created only once its data
            // file has 16 to 63 blocks (``indexThreshold(for:)``), by then durable, and creating it truncates any
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

    /// Reads and checks the header. A file of at most `headerOnlyUpTo` bytes
    /// (the header's length for the stream expected here) without an intact
    /// header throws ``NeverWritten``; a larger one throws `.corruptData`.
    static func readHeader(_ data: StorageFile, path pathString: String,
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
            (LittleEndian.load(UInt32.self, from: $0, at: 8),
             Int(LittleEndian.load(UInt32.self, from: $0, at: 12)))
        }
        guard version == formatVersion else {
            throw RingstoreError(.incompatibleFormat, "stream file \(path) has format version \(version); this build reads \(formatVersion)", path: pathString)
        }
        guard count >= 1, count <= NameRules.maxStreamNameBytes else { throw try damaged("stream name length \(count)") }
        let padded = 16 + count + (8 - (16 + count) % 8) % 8
        var header = [UInt8](repeating: 0, count: padded + 8)
        guard try header.withUnsafeMutableBytes({ try data.read(into: $0, at: 0) }) == header.count else { throw try damaged("truncated") }
        let stored = header.withUnsafeBytes { LittleEndian.load(UInt32.self, from: $0, at: padded) }
        guard CRC32C.checksum(Array(header[0..<padded])) == stored else { throw try damaged("checksum mismatch") }
        return (String(decoding: header[16..<(16 + count)], as: UTF8.self), UInt64(header.count))
    }
}
