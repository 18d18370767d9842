import SystemPackage

/// What one finished split segment holds of each stream, in a small file
/// beside it (`split/<number>.heads`), so that opening a store reads this
/// instead of walking the segment's entries.
///
/// Why: opening rebuilds every stream's ``SplitSegments/Head`` from the
/// segments. Walking them read every byte: the 100,000-stream demo killed with
/// its ring full held 773 MiB of segments, and from a cold page cache that
/// walk was most of a 1.1 s open. A summary holds one row per stream the
/// segment has entries of, and applying a segment's summary to the heads
/// gives what walking its entries gives (``SplitSegments/record(_:stream:link:header:)``
/// entry by entry): the newest entry and the version after it, the oldest
/// entry's first version, and raw bytes and entries summed.
///
/// A summary is a pure function of its segment's bytes (``StoreVerifier``
/// rebuilds it from a walk and compares), written once, after the segment is
/// finished (no more entries go there) and durable. Opening uses it only when
/// it is intact, describes the segment's whole file as it is, and every entry
/// began before the journal's checkpoint (so opening keeps them all);
/// otherwise it walks the segment as before. A missing or damaged summary
/// costs only that walk.
///
/// File layout (little-endian):
///
///     offset size  field
///      0     8     magic "RSHEADS1"
///      8     4     segment number
///     12     4     row count
///     16     8     the segment's size the rows describe
///     24     8     the largest first journal position of the segment's entries
///     32     …     rows, sorted by stream number, each six unsigned LEB128
///                    numbers: the stream number less the previous row's (the
///                    first row: the stream number), the newest entry's
///                    offset, the oldest entry's first version, the version
///                    after the newest entry less that, raw bytes (summed,
///                    saturating at 2³²-1), entries
///      …     4     CRC32C of everything before
///
/// Why variable-length numbers: with 100,000 small streams nearly every
/// stream has an entry in every segment, and fixed 32-byte rows came to 7.9 %
/// of the segments' bytes (64.5 of 814 MB in the demo's killed store), written
/// once more to the device; most of these numbers fit in a byte or two.
struct SegmentSummary: Sendable, Equatable {
    static let magic: [UInt8] = Array("RSHEADS1".utf8)
    static let headerSize = 32

    /// One stream's part of the segment.
    struct Row: Sendable, Equatable {
        var stream: UInt32
        var newestOffset: UInt32
        var next: UInt64
        var oldest: UInt64
        var rawBytes: UInt32
        var entries: UInt32
    }

    var segment: UInt32
    /// The segment file's size these rows describe.
    var segmentSize: UInt64
    /// The largest first journal position of the segment's entries (0: none).
    var lastFirstPosition: UInt64
    var rows: [Row]

    /// The file name of segment `number`'s summary.
    static func fileName(of number: UInt32) -> String {
        let name = SplitSegment.fileName(of: number)
        return name.dropLast(4) + ".heads"
    }

    /// The segment number a summary's file name stands for, or nil.
    static func number(inFileName name: String) -> UInt32? {
        guard name.hasSuffix(".heads"), name.utf8.count == 14 else { return nil }
        return UInt32(name.prefix(8), radix: 16)
    }

    // MARK: - Building

    /// Collects a segment's entries, in file order, into its summary.
    ///
    /// Rows are kept in an array indexed by stream number (24 bytes a stream
    /// up to the largest one met), not a dictionary: a segment of a store with
    /// 100,000 small streams has entries of nearly all of them, and a
    /// dictionary of that many rows took about three times the memory. The
    /// splitter keeps one builder: when a segment is finished its summary is
    /// encoded at once and the builder ``reset(segment:)`` for the next, so
    /// that two arrays of rows never coexist (with fixed rows, a second
    /// builder, and a copy of the rows to encode from, the 100,000-stream
    /// demo's peak RSS rose by 8-14 MiB).
    struct Builder: Sendable {
        private(set) var segment: UInt32
        /// One stream's part; `entries` 0: none.
        private struct Slot {
            var newestOffset: UInt32 = 0
            var entries: UInt32 = 0
            var oldest: UInt64 = 0
            /// The version after the newest entry, less `oldest`.
            var span: UInt32 = 0
            var rawBytes: UInt32 = 0
        }
        private var slots: [Slot] = []
        private(set) var lastFirstPosition: UInt64 = 0
        /// Only the entries from the start count: a builder that missed one is refused.
        private(set) var usable = true

        init(segment: UInt32) { self.segment = segment }

        /// Empties the builder for segment `number`, keeping its storage.
        mutating func reset(segment number: UInt32) {
            segment = number
            lastFirstPosition = 0
            usable = true
            slots.withUnsafeMutableBufferPointer { buffer in
                for i in buffer.indices { buffer[i] = Slot() }
            }
        }

        /// The entry at `offset` of stream `stream`, whose block header is `header`.
        mutating func add(stream: UInt32, offset: UInt64, header: StreamBlock.Header) {
            guard usable, offset <= UInt64(UInt32.max) else { usable = false; return }
            let index = Int(stream)
            if index >= slots.count {
                slots.append(contentsOf: repeatElement(Slot(), count: max(index + 1 - slots.count, slots.count / 8)))
            }
            let next = header.firstVersion + UInt64(header.count)
            let raw = UInt32(clamping: header.rawLength)
            if slots[index].entries == 0 {
                guard header.count > 0, header.count <= Int(UInt32.max) else { usable = false; return }
                slots[index] = Slot(newestOffset: UInt32(offset), entries: 1, oldest: header.firstVersion, span: UInt32(header.count),
                                    rawBytes: raw)
            } else {
                // A segment holds far fewer than 2³² versions of a stream, each after the ones before.
                guard next > slots[index].oldest, next - slots[index].oldest <= UInt64(UInt32.max) else { usable = false; return }
                slots[index].newestOffset = UInt32(offset)
                slots[index].span = UInt32(next - slots[index].oldest)
                let (sum, overflow) = slots[index].rawBytes.addingReportingOverflow(raw)
                slots[index].rawBytes = overflow ? .max : sum
                slots[index].entries += 1
            }
            lastFirstPosition = max(lastFirstPosition, header.firstPosition)
        }

        /// Something in the segment is no whole entry: it gets no summary.
        mutating func spoil() { usable = false }

        /// The summary's file bytes, describing a segment of `size` bytes (nil if spoilt).
        func encoded(size: UInt64) -> [UInt8]? {
            guard usable else { return nil }
            let count = slots.reduce(0) { $0 + ($1.entries > 0 ? 1 : 0) }
            var bytes = SegmentSummary.encodedHeader(segment: segment, rows: count, segmentSize: size, lastFirstPosition: lastFirstPosition)
            var previous = 0
            for (stream, slot) in slots.enumerated() where slot.entries > 0 {
                SegmentSummary.appendRow(streamDelta: stream - previous, newestOffset: slot.newestOffset, oldest: slot.oldest,
                                         span: UInt64(slot.span), rawBytes: slot.rawBytes, entries: slot.entries, to: &bytes)
                previous = stream
            }
            LittleEndian.append(CRC32C.checksum(bytes), to: &bytes)
            return bytes
        }

        /// The summary of the entries added, describing a segment of `size` bytes (nil if spoilt).
        func summary(size: UInt64) -> SegmentSummary? {
            encoded(size: size).flatMap { SegmentSummary.decode($0, segment: segment) }
        }
    }

    // MARK: - Applying

    /// Takes the rows into `heads` as walking the segment's entries would
    /// (see ``SplitSegments/record(_:stream:link:header:)``).
    func apply(to heads: inout [SplitSegments.Head]) {
        guard let last = rows.last else { return }
        if Int(last.stream) >= heads.count {
            heads.append(contentsOf: repeatElement(SplitSegments.Head(link: .none, segmentNext: 0, oldestVersion: 0, rawBytes: 0, entries: 0),
                                                   count: Int(last.stream) + 1 - heads.count))
        }
        for row in rows {
            let index = Int(row.stream)
            let link = SplitSegment.Link(segment: segment, offset: row.newestOffset)
            if heads[index].link.isNone {
                heads[index] = SplitSegments.Head(link: link, segmentNext: row.next, oldestVersion: row.oldest,
                                                  rawBytes: row.rawBytes, entries: row.entries)
            } else {
                heads[index].link = link
                heads[index].segmentNext = row.next
                let (sum, overflow) = heads[index].rawBytes.addingReportingOverflow(row.rawBytes)
                heads[index].rawBytes = overflow ? .max : sum
                heads[index].entries += row.entries
            }
        }
    }

    // MARK: - Encoding

    func encoded() -> [UInt8] {
        var bytes = Self.encodedHeader(segment: segment, rows: rows.count, segmentSize: segmentSize, lastFirstPosition: lastFirstPosition)
        var previous: UInt32 = 0
        for row in rows {
            Self.appendRow(streamDelta: Int(row.stream - previous), newestOffset: row.newestOffset, oldest: row.oldest,
                           span: row.next - row.oldest, rawBytes: row.rawBytes, entries: row.entries, to: &bytes)
            previous = row.stream
        }
        LittleEndian.append(CRC32C.checksum(bytes), to: &bytes)
        return bytes
    }

    /// The file's first 32 bytes, with room reserved for `rows` rows.
    static func encodedHeader(segment: UInt32, rows: Int, segmentSize: UInt64, lastFirstPosition: UInt64) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(headerSize + rows * 12 + 4)
        bytes += magic
        LittleEndian.append(segment, to: &bytes)
        LittleEndian.append(UInt32(rows), to: &bytes)
        LittleEndian.append(segmentSize, to: &bytes)
        LittleEndian.append(lastFirstPosition, to: &bytes)
        return bytes
    }

    static func appendRow(streamDelta: Int, newestOffset: UInt32, oldest: UInt64, span: UInt64, rawBytes: UInt32, entries: UInt32,
                          to bytes: inout [UInt8]) {
        LEB128.append(UInt64(streamDelta), to: &bytes)
        LEB128.append(UInt64(newestOffset), to: &bytes)
        LEB128.append(oldest, to: &bytes)
        LEB128.append(span, to: &bytes)
        LEB128.append(UInt64(rawBytes), to: &bytes)
        LEB128.append(UInt64(entries), to: &bytes)
    }

    /// Parses a summary file's bytes: nil unless they are whole, intact, of
    /// segment `number`, and their rows sorted by stream without repeats.
    static func decode(_ bytes: [UInt8], segment number: UInt32) -> SegmentSummary? {
        guard bytes.count >= headerSize + 4, Array(bytes[0..<8]) == magic,
              LittleEndian.load(UInt32.self, from: bytes, at: 8) == number else { return nil }
        let count = Int(LittleEndian.load(UInt32.self, from: bytes, at: 12))
        let end = bytes.count - 4
        guard count <= (end - headerSize) / 6,  // a row takes six bytes at least
              LittleEndian.load(UInt32.self, from: bytes, at: end)
                == bytes.withUnsafeBytes({ CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[..<end])) })
        else { return nil }
        var rows: [Row] = []
        rows.reserveCapacity(count)
        let parsed: Bool = bytes.withUnsafeBytes { raw in
            var at = headerSize
            var stream: UInt64 = 0
            for i in 0..<count {
                guard let delta = LEB128.read(raw, at: &at, end: end), let offset = LEB128.read(raw, at: &at, end: end),
                      let oldest = LEB128.read(raw, at: &at, end: end), let span = LEB128.read(raw, at: &at, end: end),
                      let rawBytes = LEB128.read(raw, at: &at, end: end), let entries = LEB128.read(raw, at: &at, end: end),
                      i == 0 || delta > 0, span > 0, entries > 0,
                      offset <= UInt32.max, rawBytes <= UInt32.max, entries <= UInt32.max,
                      oldest <= UInt64.max - span, delta <= UInt64(UInt32.max) - stream
                else { return false }
                stream += delta
                rows.append(Row(stream: UInt32(stream), newestOffset: UInt32(offset), next: oldest + span, oldest: oldest,
                                rawBytes: UInt32(rawBytes), entries: UInt32(entries)))
            }
            return at == end
        }
        guard parsed else { return nil }
        return SegmentSummary(segment: number, segmentSize: LittleEndian.load(UInt64.self, from: bytes, at: 16),
                              lastFirstPosition: LittleEndian.load(UInt64.self, from: bytes, at: 24), rows: rows)
    }

    // MARK: - Files

    /// Reads segment `number`'s summary in `folder`: nil if there is none or it is not intact.
    static func read(segment number: UInt32, in folder: FilePath) -> SegmentSummary? {
        guard let bytes = try? StorageFile.readWhole(folder.appending(fileName(of: number))) else { return nil }
        return decode(bytes, segment: number)
    }

    /// Writes segment `number`'s summary, `bytes` (``encoded()``), into
    /// `folder` (replacing any earlier file of the segment) and makes them
    /// durable; the caller syncs the folder.
    static func write(_ bytes: [UInt8], segment number: UInt32, in folder: FilePath) throws {
        let path = folder.appending(fileName(of: number))
        try StorageDirectory.removeFile(path)
        try StorageFile.create(path, holding: bytes, sync: true)
    }
}
