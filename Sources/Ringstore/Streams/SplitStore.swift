import Synchronization
import SystemPackage

/// Where split events are stored: each stream's file, continued by the
/// stream's entries in the split segments. Readers, the journal writer (for
/// retries and streams that left the ring) and the splitter go through it, so
/// none of them needs to know which of the two holds a version.
///
/// A stream's history is always a prefix in its file (versions below the
/// file's next version) followed by its segment chain (from there to the
/// chain's next version); the chain may also hold versions below the file's
/// end — entries already moved, or written again by a replay — which are
/// skipped. Moving a stream's entries into its file (``move(stream:number:)``,
/// ``writeToFile(stream:number:blocks:)``) and reading a stream are serialised
/// per stream (``stripes``), so a reader never sees the file's end from before
/// a move and the chain from after it.
final class SplitStore: StoredStreams, Sendable {
    let directory: StreamDirectory
    let segments: SplitSegments
    let catalog: StreamCatalog
    let compress: Bool

    private final class Stripe: Sendable { let lock = Mutex(()) }
    /// Per-stream serialisation of moves and reads, by stream number.
    private let stripes: [Stripe] = (0..<64).map { _ in Stripe() }
    /// By stream number: the version the split storage takes next for that
    /// stream (file and segments together), or `unknown` until it was first
    /// looked up this session. Spares the splitter opening the file of every
    /// stream it writes to the segments at every checkpoint.
    private let known = Mutex<[UInt64]>([])
    private static let unknown = UInt64.max

    /// Raw bytes a block moved from the segments into a stream file holds at
    /// most: large enough to compress well, small enough that reading one
    /// event does not decode much more.
    static let movedBlockBytes = 64 << 10

    /// A segment entry with at least this many raw bytes is copied into the
    /// stream file as it is (when it would start a block of its own anyway),
    /// rather than decompressed, joined and compressed again, which would give
    /// about the same block back. Appends of many events at once make such
    /// entries (100 events of 200 bytes: about 27 KiB): with them, copying
    /// halved the mover's share of samples in `moveEntries` (8.6 to 4.0 %).
    static let movedWholeBytes = 16 << 10

    /// Stream entries moved from the segments into stream files (stats).
    let movedEntries = Atomic<UInt64>(0)
    /// Of ``movedEntries``, those copied into the file as they are (``movedWholeBytes``).
    let movedEntriesCopied = Atomic<UInt64>(0)

    init(directory: StreamDirectory, segments: SplitSegments, catalog: StreamCatalog, compress: Bool) {
        self.directory = directory
        self.segments = segments
        self.catalog = catalog
        self.compress = compress
    }

    func withStripe<R>(_ number: UInt32?, _ body: () throws -> R) rethrows -> R {
        guard let number else { return try body() }
        return try stripes[Int(number % UInt32(stripes.count))].lock.withLock { _ in try body() }
    }

    private func remember(_ number: UInt32, next: UInt64) {
        known.withLock { k in
            let index = Int(number)
            if index >= k.count { k.append(contentsOf: repeatElement(Self.unknown, count: max(index + 1 - k.count, k.count / 2))) }
            if k[index] == Self.unknown || k[index] < next { k[index] = next }
        }
    }

    /// Records that stream `number` has no stream file (the offline tool verified so
    /// with the store closed and its segment mover stopped): its next version is its
    /// segments', and ``nextVersion(of:)`` then needs no path lookup for it (with
    /// 100,000 streams of a few events, those lookups were a tenth of a compaction).
    func rememberNoFile(_ number: UInt32) {
        rememberVerified(number, fileNext: 0)
    }

    /// Records that stream `number`'s file ends before version `fileNext` (0: it has
    /// none), as the offline tool verified with the store closed: its next version is
    /// then the larger of that and its segments', with no path lookup or open of the
    /// file (the lookup probes each collision slot with a `stat`, then opens the file).
    func rememberVerified(_ number: UInt32, fileNext: UInt64) {
        remember(number, next: max(fileNext, segments.nextVersion(of: number)))
    }

    private func knownNext(_ number: UInt32) -> UInt64? {
        known.withLock { k in
            let index = Int(number)
            return index < k.count && k[index] != Self.unknown ? k[index] : nil
        }
    }

    // MARK: - Reading

    /// The version after the last one stored for `stream` (0: none), in its file or the segments.
    func nextVersion(of stream: String) throws -> UInt64 {
        let number = catalog.number(of: stream)
        if let number, let next = knownNext(number) { return next }
        let next = try withStripe(number) {
            let fileNext = try directory.handle(for: stream, number: number, create: false)?.withFile { $0.nextVersion } ?? 0
            return max(fileNext, number.map { segments.nextVersion(of: $0) } ?? 0)
        }
        if let number { remember(number, next: next) }
        return next
    }

    /// Up to `maxCount` stored events of `stream` from `version` on (clamped
    /// into what is stored), forwards or backwards. `offer`: what the blocks
    /// decoded are offered to the readers' block cache (see ``BlockOffer``).
    func read(stream: String, from version: UInt64, direction: ReadDirection, maxCount: Int,
              offer: BlockOffer = .decoded) throws -> [RecordedEvent] {
        guard maxCount > 0 else { return [] }
        let number = catalog.number(of: stream)
        return try withStripe(number) {
            let handle = try directory.handle(for: stream, number: number, create: false)
            let fileNext = handle?.withFile { $0.nextVersion } ?? 0
            let segmentNext = number.map { segments.nextVersion(of: $0) } ?? 0
            let end = max(fileNext, segmentNext)
            guard end > 0 else { return [] }
            var result: [RecordedEvent] = []
            switch direction {
            case .forwards:
                guard version < end else { return [] }
                if version < fileNext, let handle {
                    result = try handle.withFile { try $0.read(from: version, direction: .forwards, maxCount: maxCount, offer: offer) }
                }
                if result.count < maxCount, segmentNext > fileNext, let number {
                    let from = max(version, fileNext)
                    result += try segmentEvents(of: stream, number: number, floor: fileNext, from: from,
                                                direction: .forwards, maxCount: maxCount - result.count, offer: offer)
                }
            case .backwards:
                let start = min(version, end - 1)
                if start >= fileNext, let number {
                    result = try segmentEvents(of: stream, number: number, floor: fileNext, from: start,
                                               direction: .backwards, maxCount: maxCount, offer: offer)
                }
                if result.count < maxCount, fileNext > 0, let handle {
                    let from = min(start, fileNext - 1)
                    result += try handle.withFile { try $0.read(from: from, direction: .backwards, maxCount: maxCount - result.count, offer: offer) }
                }
            }
            return result
        }
    }

    /// Events from the segment chain of stream `number`, whose file ends at `floor`.
    private func segmentEvents(of stream: String, number: UInt32, floor: UInt64, from version: UInt64,
                               direction: ReadDirection, maxCount: Int, offer: BlockOffer) throws -> [RecordedEvent] {
        let lowest: UInt64
        switch direction {
        case .forwards:
            lowest = version
        case .backwards:
            // Only the `maxCount` versions up to `version` (a stream's versions have no
            // gaps). Listing and reading every entry down to the file's end read a
            // chain's every entry (one `pread` each) to return its newest event.
            let (below, underflow) = version.subtractingReportingOverflow(UInt64(maxCount) - 1)
            lowest = underflow ? floor : max(floor, below)
        }
        var result: [RecordedEvent] = []
        // Only the entries that can hold the versions asked for are read.
        let (last, overflow) = version.addingReportingOverflow(UInt64(maxCount) - 1)
        let through = direction == .forwards ? (overflow ? UInt64.max : last) : version
        let entries = try segments.entries(of: number, from: lowest, through: through)
        let ordered = direction == .forwards ? entries : entries.reversed()
        for entry in ordered {
            let first = entry.header.firstVersion
            let events: [RecordedEvent]
            var decoded = false
            if let cached = directory.blockCache.block(of: stream, containing: max(first, floor)),
               cached.firstVersion == first, cached.events.count == entry.header.count {
                events = cached.events
            } else {
                switch StreamBlock.decode(entry.block, stream: stream, dictionary: entry.dictionary) {
                case .success(let fresh): events = fresh
                case .failure(let error):
                    throw RingstoreError(.corruptData, "split segment \(entry.path) is damaged at offset \(entry.offset): the entry of stream \"\(stream)\" from version \(first) does not decode (\(error))",
                                         stream: stream, path: entry.path, offset: entry.offset)
                }
                decoded = true
            }
            var stoppedInside = false
            for (index, event) in (direction == .forwards ? events : events.reversed()).enumerated() {
                guard event.version >= floor else { continue }
                switch direction {
                case .forwards: if event.version < version { continue }
                case .backwards: if event.version > version { continue }
                }
                result.append(event)
                if result.count == maxCount {
                    stoppedInside = index + 1 < events.count
                    break
                }
            }
            if decoded {
                directory.blockCache.offer(offer, stream: stream, firstVersion: first, events: events, stopsInside: stoppedInside)
            }
            if result.count == maxCount { return result }
        }
        return result
    }

    /// The stored block of stream `number` (named `stream`) holding `version`,
    /// checked and decompressed, and the versions of it that are the stream's
    /// (a segment entry may also hold versions below the file's end, moved
    /// already: those are left out); nil if `version` is not stored. Touches
    /// neither the block cache nor the decoded events: for `$all`
    /// (``AllReadWindow``), which keeps what it decodes itself.
    ///
    /// `link` is where the block lies in the segments, nil if it came from the
    /// stream's file. `extent`: how much of the block to decompress (a part
    /// holds fewer versions, `version` among them).
    func decodedBlock(of stream: String, number: UInt32, containing version: UInt64, extent: StreamBlock.DecodeExtent = .whole)
        throws -> (block: StreamBlock.Decoded, versions: Range<UInt64>, link: SplitSegment.Link?)? {
        try withStripe(number) {
            let handle = try directory.handle(for: stream, number: number, create: false)
            let fileNext = handle?.withFile { $0.nextVersion } ?? 0
            if version < fileNext, let handle {
                guard let block = try handle.withFile({ try $0.decodedBlock(containing: version, extent: extent) }) else { return nil }
                return (block, block.firstVersion..<(block.firstVersion + UInt64(block.count)), nil)
            }
            guard version < segments.nextVersion(of: number),
                  let entry = try segments.entries(of: number, from: max(version, fileNext), through: version).first
            else { return nil }
            let block: StreamBlock.Decoded
            switch StreamBlock.decoded(from: entry.block[...], dictionary: entry.dictionary, extent: extent) {
            case .success(let decoded): block = decoded
            case .failure(let error):
                throw RingstoreError(.corruptData, "split segment \(entry.path) is damaged at offset \(entry.offset): the entry of stream \"\(stream)\" from version \(entry.header.firstVersion) does not decode (\(error))",
                                     stream: stream, path: entry.path, offset: entry.offset)
            }
            let versions = max(block.firstVersion, fileNext)..<(block.firstVersion + UInt64(block.count))
            guard versions.contains(version) else { return nil }
            return (block, versions, entry.link)
        }
    }

    /// The version after the last one `stream`'s file holds (0: no file).
    func fileNextVersion(of stream: String) throws -> UInt64 {
        let number = catalog.number(of: stream)
        return try withStripe(number) {
            try directory.handle(for: stream, number: number, create: false)?.withFile { $0.nextVersion } ?? 0
        }
    }

    func storedNextVersion(of stream: String) throws -> UInt64 { try nextVersion(of: stream) }

    func storedName(equivalentTo stream: String) -> String? { catalog.entry(of: stream)?.name }

    func storedEvents(of stream: String, from version: UInt64, count: Int) throws -> [RecordedEvent] {
        try read(stream: stream, from: version, direction: .forwards, maxCount: count)
    }

    // MARK: - Writing (the splitter)

    /// One stream's blocks for the segments.
    struct Item {
        var number: UInt32
        var blocks: [StreamBlock.RawBlock]
    }

    /// Appends each item's blocks (which continue what its stream holds) to
    /// the segments with one write. Not synced: the checkpoint syncs them.
    func appendToSegments(_ items: [Item]) throws {
        try segments.append(items.map { .init(stream: $0.number, blocks: $0.blocks) }, compress: compress)
        for item in items {
            if let last = item.blocks.last(where: { $0.count > 0 }) { remember(item.number, next: last.firstVersion + UInt64(last.count)) }
        }
    }

    /// Writes into `stream`'s file its segment entries not there yet, then
    /// `blocks` (whose versions continue them; any below the file's new end are
    /// dropped), and returns the file's next version. Not synced.
    @discardableResult
    func writeToFile(stream: String, number: UInt32?, blocks: [StreamBlock.RawBlock]) throws -> UInt64 {
        try withStripe(number) {
            guard let handle = try directory.handle(for: stream, number: number, create: true) else {
                throw RingstoreError(.ioError, "cannot create the stream file of \"\(stream)\"", stream: stream)
            }
            let next = try handle.withFile { file in
                let moved = try moveEntries(of: stream, number: number, into: file)
                var output: [StreamBlock.RawBlock] = []
                for block in blocks {
                    guard let rest = block.dropping(below: file.nextVersion), rest.count > 0 else { continue }
                    output.append(rest)
                }
                try file.append(blocks: output, compress: compress)
                if let moved { segments.moved(stream: moved.number, through: moved.link, movedTo: file.nextVersion,
                                              rawBytes: moved.rawBytes, entries: moved.entries) }
                return file.nextVersion
            }
            if let number { remember(number, next: next) }
            return next
        }
    }

    /// Moves `stream`'s segment entries into its file: all of them, or those in
    /// segments up to `lastSegment` (the mover, emptying the oldest segment,
    /// takes a stream's entries up to the segment where the segments' budget
    /// ends, so that moving needs at most the budget again in free space).
    /// Returns whether the file
    /// must be synced (then ``SplitSegments/forgetMoved(_:)`` called): false
    /// when there was nothing to move. Not synced.
    ///
    /// `located`: the stream's entries in the segment being emptied
    /// (``SplitSegments/locateEntries(in:)``). The stream is moved only if
    /// some of them hold versions its file lacks (an earlier move through
    /// newer segments may have taken them all); when that segment is
    /// `lastSegment` they are read directly rather than found by walking the
    /// chain, as long as they continue the file.
    /// `fileEnd`: told the stream file's next version once the move is done (a
    /// file's end only grows), so that the mover need not open it again to check.
    @discardableResult
    func move(stream: String, number: UInt32, throughSegment lastSegment: UInt32 = .max,
              located: (segment: UInt32, entries: ArraySlice<SplitSegments.Located>)? = nil,
              fileEnd: ((UInt64) -> Void)? = nil) throws -> Bool {
        guard let head = segments.head(of: number) else { return false }
        return try withStripe(number) {
            let fileNext = try directory.handle(for: stream, number: number, create: false)?.withFile { $0.nextVersion } ?? 0
            fileEnd?(fileNext)
            guard head.segmentNext > fileNext else {
                // The file holds them already (a replay, or a move whose sync is pending):
                // true, so that the caller syncs the file before the chain is forgotten.
                segments.moved(stream: number, through: head.link, movedTo: fileNext, rawBytes: head.rawBytes, entries: head.entries)
                return true
            }
            if let located, !located.entries.contains(where: { $0.lastVersion >= fileNext }) {
                return false  // what the segment holds of it is in the file already
            }
            // A stream file that does not exist yet is created only if there is something to move.
            // The entries are read once, here: the file cannot grow meanwhile (the stripe is held,
            // and the splitter writes into a stream's file only while it has no entries).
            var entries = try located.flatMap { located in
                located.segment == lastSegment ? try segments.entries(located.entries, inSegment: located.segment, from: fileNext) : nil
            }
            if let first = entries?.first, first.header.firstVersion > fileNext {
                entries = nil  // not continuing the file: found by the chain instead (which names any gap)
            }
            let found = try entries ?? segments.entries(of: number, from: fileNext, throughSegment: lastSegment)
            guard let oldest = found.first, oldest.segment <= lastSegment,
                  let handle = try directory.handle(for: stream, number: number, create: true)
            else { return false }
            // Not remembered as the stream's next version: after a partial move the
            // segments still hold versions beyond the file's end.
            return try handle.withFile { file -> Bool in
                guard let moved = try moveEntries(of: stream, number: number, into: file, throughSegment: lastSegment,
                                                  read: found) else {
                    return false
                }
                segments.moved(stream: number, through: moved.link, movedTo: file.nextVersion,
                               rawBytes: moved.rawBytes, entries: moved.entries)
                fileEnd?(file.nextVersion)
                return true
            }
        }
    }

    /// The dictionary the blocks built by a move are compressed against (those
    /// under ``CompressionDictionary/entryLimit`` raw bytes use it): the store's
    /// ``StreamFileDictionary``, adopted from a full-size dictionary of the
    /// entries' segments when the store has none yet; nil without compression,
    /// or when no built block is that small and the store has none.
    ///
    /// Why: a stream that gets a few events per checkpoint reaches its file in
    /// moves of a few kilobytes, which LZ4 shrinks little on their own (the
    /// reason segment entries have a dictionary, and compaction's small blocks).
    private func fileDictionary(for ready: [StreamBlock.Appended],
                                from entries: some Collection<SplitSegment.Entry>) throws -> CompressionDictionary? {
        guard compress else { return nil }
        if let dictionary = directory.dictionary { return dictionary }
        let small = ready.contains { block in
            if case .built(let built) = block { return built.raw.count < CompressionDictionary.entryLimit }
            return false
        }
        guard small, let sample = entries.lazy.compactMap(\.dictionary).first(where: { $0.bytes.count == CompressionDictionary.maxBytes })
        else { return nil }
        return try directory.adoptDictionary(CompressionDictionary(UnsafeRawBufferPointer(sample.bytes)))
    }

    private struct Moved {
        var number: UInt32
        var link: SplitSegment.Link
        var rawBytes: UInt32
        var entries: UInt32
    }

    /// Appends to `file` the stream's segment entries from the file's end on,
    /// joined into blocks of about ``movedBlockBytes``. The caller tells the
    /// segments (``SplitSegments/moved(stream:through:movedTo:rawBytes:entries:)``) once it is done.
    ///
    /// `read`: the entries from the file's end on, if the caller read them already.
    private func moveEntries(of stream: String, number: UInt32?, into file: StreamFile,
                             throughSegment lastSegment: UInt32 = .max, read: [SplitSegment.Entry]? = nil) throws -> Moved? {
        guard let number, let head = segments.head(of: number), head.segmentNext > file.nextVersion else { return nil }
        // Oldest first, so those up to `lastSegment` are a prefix.
        let entries = try (read ?? segments.entries(of: number, from: file.nextVersion)).prefix { $0.segment <= lastSegment }
        var builder = StreamBlock.Builder(limit: Self.movedBlockBytes)
        var ready: [StreamBlock.Appended] = []
        var copied: UInt64 = 0
        var expected = file.nextVersion
        for entry in entries {
            if takesWhole(entry, expected: expected, building: builder.current) {
                // What the builder holds goes first, as a block of its own (joining
                // this entry to it would have closed it too).
                let built = builder.finish()
                ready += built.map { .built($0) }
                builder = StreamBlock.Builder(limit: Self.movedBlockBytes)
                ready.append(.copied(bytes: entry.block, firstVersion: entry.header.firstVersion, count: entry.header.count))
                copied += 1
                expected = entry.header.firstVersion + UInt64(entry.header.count)
                continue
            }
            guard case .success(let raw) = StreamBlock.rawBlock(from: entry.block, dictionary: entry.dictionary),
                  let rest = raw.dropping(below: expected) else {
                throw RingstoreError(.corruptData, "split segment \(entry.path) is damaged at offset \(entry.offset): the entry of stream \"\(stream)\" from version \(entry.header.firstVersion) does not decode",
                                     stream: stream, path: entry.path, offset: entry.offset)
            }
            guard rest.count > 0 else { continue }
            guard rest.firstVersion == expected else {
                throw RingstoreError(.corruptData, "stream \"\(stream)\": its split segment entries skip from version \(expected) to \(rest.firstVersion)",
                                     stream: stream)
            }
            builder.add(rest)
            expected = rest.firstVersion + UInt64(rest.count)
        }
        ready += builder.finish().map { .built($0) }
        guard let last = entries.last else { return nil }
        if !ready.isEmpty { try file.append(sources: ready, compress: compress, dictionary: try fileDictionary(for: ready, from: entries)) }
        movedEntriesCopied.add(copied, ordering: .relaxed)
        movedEntries.add(UInt64(entries.count), ordering: .relaxed)
        let rawBytes = entries.reduce(UInt64(0)) { $0 + UInt64($1.header.rawLength) }
        return Moved(number: number, link: last.link, rawBytes: UInt32(clamping: rawBytes), entries: UInt32(entries.count))
    }

    /// Whether `entry` goes into the stream file as it is: it starts at the
    /// version the file needs next (nothing in it is there already), holds at
    /// least ``movedWholeBytes`` raw bytes, would not be joined to the block
    /// being built (`building`) anyway, is compressed only if this store
    /// compresses (with compression off such an entry is rebuilt uncompressed)
    /// and not against its segment's dictionary (which a stream file lacks;
    /// the splitter uses it only for smaller entries),
    /// and its payload checksum holds. (The entry's header was checked when it was read.) A
    /// damaged entry is not copied: decoding it then reports where it is.
    private func takesWhole(_ entry: SplitSegment.Entry, expected: UInt64, building: StreamBlock.RawBlock) -> Bool {
        let header = entry.header
        guard header.firstVersion == expected, header.count > 0, header.rawLength >= Self.movedWholeBytes, !header.dictionary,
              building.count == 0 || building.raw.count + header.rawLength > Self.movedBlockBytes,
              compress || !header.compressed,
              entry.block.count == header.totalLength
        else { return false }
        return entry.block.withUnsafeBytes {
            CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[StreamBlock.headerSize...])) == header.payloadCRC
        }
    }

    /// The next version the split storage takes for `stream` (for the splitter:
    /// records below it are already stored, by a replay after a crash or a reader's request).
    func splitNext(of stream: String, number: UInt32?) throws -> UInt64 {
        if let number, let next = knownNext(number) { return next }
        return try nextVersion(of: stream)
    }
}
