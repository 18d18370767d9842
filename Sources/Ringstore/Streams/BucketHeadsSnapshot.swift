import SystemPackage

/// The bucket files' heads as they stood when every bucket file was synced to
/// its end (`streams/buckets/heads`), so that opening walks only what the
/// files gained since, not their whole history.
///
/// Why: opening rebuilt every bucketed stream's ``StreamBuckets/Head`` by
/// walking every bucket file whole, so the open grew with the small streams'
/// history (137.6 MB read to reopen the 100,000-stream demo's killed store,
/// more than half of a 4 s reopen on the SD-card profile).
///
/// Written by the segment mover right after a batch's sync (see
/// ``StreamBuckets/writeSnapshotIfGrown()``): no append is in flight then,
/// every file's end is durable, and every stream whose chain was forgotten has
/// its own file synced. The heads are the store's own (a promoted stream's
/// chain stays forgotten), and each file's end says how far they describe it.
/// Opening takes the snapshot only when it is intact and every file it names
/// is at least that long, and walks each file from that end (a file it does
/// not name, whole); otherwise it walks everything, as before.
///
/// File layout (little-endian):
///
///     offset size  field
///      0     8     magic "RSBHEAD1"
///      8     4     file count
///     12     4     head count
///     16     …     files, 12 bytes each: number u32, end u64
///      …     …     heads, sorted by stream number, each six unsigned LEB128
///                  numbers (``LEB128``): the stream number less the previous
///                  head's, the newest entry's file number and offset, the
///                  version after it, raw bytes, entries
///      …     4     CRC32C of everything before
struct BucketHeadsSnapshot: Sendable, Equatable {
    static let fileName = "heads"
    static let newFileName = "heads.new"
    static let magic: [UInt8] = Array("RSBHEAD1".utf8)

    /// A bucket file and the end of its entries the heads describe.
    struct FileEnd: Sendable, Equatable {
        var number: UInt32
        var end: UInt64
    }

    var files: [FileEnd]
    /// By stream number; `link.isNone` for streams without a chain.
    var heads: [StreamBuckets.Head]

    func encoded() -> [UInt8] {
        let count = heads.reduce(0) { $0 + ($1.link.isNone ? 0 : 1) }
        var bytes = Self.magic
        bytes.reserveCapacity(16 + files.count * 12 + count * 12 + 4)
        LittleEndian.append(UInt32(files.count), to: &bytes)
        LittleEndian.append(UInt32(count), to: &bytes)
        for file in files {
            LittleEndian.append(file.number, to: &bytes)
            LittleEndian.append(file.end, to: &bytes)
        }
        var previous = 0
        for (stream, head) in heads.enumerated() where !head.link.isNone {
            LEB128.append(UInt64(stream - previous), to: &bytes)
            LEB128.append(UInt64(head.link.segment), to: &bytes)
            LEB128.append(UInt64(head.link.offset), to: &bytes)
            LEB128.append(head.next, to: &bytes)
            LEB128.append(UInt64(head.rawBytes), to: &bytes)
            LEB128.append(UInt64(head.entries), to: &bytes)
            previous = stream
        }
        LittleEndian.append(CRC32C.checksum(bytes), to: &bytes)
        return bytes
    }

    /// Parses a snapshot's bytes: nil unless they are whole and intact, with
    /// heads sorted by stream, at most `maxStreams` of them, each naming a
    /// bucket file (never a segment) and at least one entry.
    static func decode(_ bytes: [UInt8], maxStreams: Int = 1 << 26) -> BucketHeadsSnapshot? {
        guard bytes.count >= 20, Array(bytes[0..<8]) == magic else { return nil }
        let fileCount = Int(LittleEndian.load(UInt32.self, from: bytes, at: 8))
        let count = Int(LittleEndian.load(UInt32.self, from: bytes, at: 12))
        let end = bytes.count - 4
        guard fileCount <= (end - 16) / 12, count <= (end - 16 - fileCount * 12) / 6,
              LittleEndian.load(UInt32.self, from: bytes, at: end)
                == bytes.withUnsafeBytes({ CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[..<end])) })
        else { return nil }
        var files: [FileEnd] = []
        for i in 0..<fileCount {
            let file = FileEnd(number: LittleEndian.load(UInt32.self, from: bytes, at: 16 + i * 12),
                               end: LittleEndian.load(UInt64.self, from: bytes, at: 20 + i * 12))
            guard file.number >= StreamBuckets.numberBase, files.last.map({ $0.number < file.number }) ?? true else { return nil }
            files.append(file)
        }
        var heads: [StreamBuckets.Head] = []
        let parsed: Bool = bytes.withUnsafeBytes { raw in
            var at = 16 + fileCount * 12
            var stream: UInt64 = 0
            for i in 0..<count {
                guard let delta = LEB128.read(raw, at: &at, end: end), let file = LEB128.read(raw, at: &at, end: end),
                      let offset = LEB128.read(raw, at: &at, end: end), let next = LEB128.read(raw, at: &at, end: end),
                      let rawBytes = LEB128.read(raw, at: &at, end: end), let entries = LEB128.read(raw, at: &at, end: end),
                      i == 0 || delta > 0, delta < UInt64(maxStreams) - stream,
                      file >= UInt64(StreamBuckets.numberBase), file <= UInt32.max, offset <= UInt32.max,
                      next > 0, rawBytes <= UInt32.max, entries > 0, entries <= UInt32.max
                else { return false }
                stream += delta
                if Int(stream) >= heads.count {
                    heads.append(contentsOf: repeatElement(StreamBuckets.Head.empty, count: Int(stream) + 1 - heads.count))
                }
                heads[Int(stream)] = StreamBuckets.Head(link: SplitSegment.Link(segment: UInt32(file), offset: UInt32(offset)),
                                                        next: next, rawBytes: UInt32(rawBytes), entries: UInt32(entries))
            }
            return at == end
        }
        guard parsed else { return nil }
        return BucketHeadsSnapshot(files: files, heads: heads)
    }

    /// The snapshot in `folder` (the bucket files' folder), if there is one and it is intact.
    static func read(in folder: FilePath) -> BucketHeadsSnapshot? {
        guard let bytes = try? StorageFile.readWhole(folder.appending(fileName)) else { return nil }
        return decode(bytes)
    }

    /// Replaces the snapshot in `folder` with `bytes`, under a new name first
    /// (``StorageFile/replaceDurably(_:with:via:)``): a cut before the rename
    /// is durable leaves the old snapshot (it still describes the files as far
    /// as it says), after it the new one whole.
    static func write(_ bytes: [UInt8], in folder: FilePath) throws {
        try StorageFile.replaceDurably(folder.appending(fileName), with: bytes, via: folder.appending(newFileName))
    }
}
