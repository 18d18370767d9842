import Synchronization
import SystemPackage

/// Where split events are stored: each stream's moved part (its own file, or
/// its chain in a bucket file), continued by the stream's entries in the split
/// segments. Readers, the journal writer (for retries and streams that left
/// the ring) and the splitter go through it, so none of them needs to know
/// which one holds a version.
///
/// A stream's history is always a prefix in its moved part (versions below
/// its next version) followed by its segment chain (from there to the chain's
/// next version); the chain may also hold versions below the moved part's
/// end — entries already moved, or written again by a replay — which are
/// skipped. The moved part is whichever of the file and the bucket chain
/// reaches further (``MovedPart``): both only ever hold a prefix of the
/// history from version 0, a stream is bucketed only while it has no file,
/// and the file of a stream leaving its bucket (``promotedBytes``) is written
/// from the chain, so a file cut short by a crash part-way is simply a shorter
/// prefix until the next move completes it.
///
/// Moving a stream's entries into its moved part (``move(stream:number:)``,
/// ``writeToFile(stream:number:blocks:)``) and reading a stream are serialised
/// per stream (``stripes``), so a reader never sees the moved part's end from
/// before a move and the chain from after it.
final class SplitStore: StoredStreams, Sendable {
    let directory: StreamDirectory
    let segments: SplitSegments
    /// Small streams' moved history (read whenever the store has bucket files).
    let buckets: StreamBuckets
    /// Whether moves put streams without a file into their bucket (otherwise
    /// each stream moves into a file of its own, as before buckets existed).
    let movesIntoBuckets: Bool
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

    /// Raw bytes of moved history from which a stream leaves its bucket for a
    /// file of its own: 16 blocks of ``movedBlockBytes``, where a stream file
    /// gets its index. Below it a read of the stream walks at most about as
    /// many entries as a file's blocks without an index.
    static let promotedBytes: UInt64 = 16 * UInt64(movedBlockBytes)

    init(directory: StreamDirectory, segments: SplitSegments, buckets: StreamBuckets? = nil, movesIntoBuckets: Bool = false,
         catalog: StreamCatalog, compress: Bool) throws {
        self.directory = directory
        self.segments = segments
        self.buckets = try buckets ?? StreamBuckets(streams: directory.root.appending(StreamNaming.folder))
        self.movesIntoBuckets = movesIntoBuckets
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
    /// then the largest of that, its bucket chain's and its segments', with no path lookup
    /// or open of the file (the lookup probes each collision slot with a `stat`, then opens the file).
    func rememberVerified(_ number: UInt32, fileNext: UInt64) {
        remember(number, next: max(fileNext, buckets.nextVersion(of: number), segments.nextVersion(of: number)))
    }

    private func knownNext(_ number: UInt32) -> UInt64? {
        known.withLock { k in
            let index = Int(number)
            return index < k.count && k[index] != Self.unknown ? k[index] : nil
        }
    }

    // MARK: - Reading

    /// Where a stream's history below its segment chain lies (looked up under its stripe).
    struct MovedPart {
        /// The stream's file, if it has one.
        var handle: StreamDirectory.Handle?
        /// The version after the file's last (0: no file).
        var fileNext: UInt64
        /// What the stream's bucket holds of it, if anything.
        var bucket: StreamBuckets.Head?
        /// The version after the bucket chain's last (0: none).
        var bucketNext: UInt64 { bucket?.next ?? 0 }
        /// The version after the moved part's last: the segments hold the history from here on.
        var next: UInt64 { max(fileNext, bucketNext) }
        /// Whether the bucket chain is the moved part (it reaches further than the file).
        var isBucketed: Bool { bucketNext > fileNext }
    }

    /// Stream `number`'s moved part (call under its stripe).
    private func movedPart(of stream: String, number: UInt32?) throws -> MovedPart {
        let handle = try directory.handle(for: stream, number: number, create: false)
        return MovedPart(handle: handle, fileNext: handle?.withFile { $0.nextVersion } ?? 0,
                         bucket: number.flatMap { buckets.head(of: $0) })
    }

    /// The version after the last one stored for `stream` (0: none), in its moved part or the segments.
    func nextVersion(of stream: String) throws -> UInt64 {
        let number = catalog.number(of: stream)
        if let number, let next = knownNext(number) { return next }
        let next = try withStripe(number) {
            max(try movedPart(of: stream, number: number).next, number.map { segments.nextVersion(of: $0) } ?? 0)
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
            let moved = try movedPart(of: stream, number: number)
            let segmentNext = number.map { segments.nextVersion(of: $0) } ?? 0
            let end = max(moved.next, segmentNext)
            guard end > 0 else { return [] }
            /// Up to `count` events of the moved part from `version` on.
            func movedEvents(from version: UInt64, _ direction: ReadDirection, _ count: Int) throws -> [RecordedEvent] {
                if moved.isBucketed, let number {
                    return try chainEvents(of: stream, floor: 0, from: version, direction: direction, maxCount: count, offer: offer) {
                        try buckets.entries(of: number, from: $0, through: $1)
                    }
                }
                return try moved.handle?.withFile { try $0.read(from: version, direction: direction, maxCount: count, offer: offer) } ?? []
            }
            var result: [RecordedEvent] = []
            switch direction {
            case .forwards:
                guard version < end else { return [] }
                if version < moved.next {
                    result = try movedEvents(from: version, .forwards, maxCount)
                }
                if result.count < maxCount, segmentNext > moved.next, let number {
                    let from = max(version, moved.next)
                    result += try chainEvents(of: stream, floor: moved.next, from: from, direction: .forwards,
                                              maxCount: maxCount - result.count, offer: offer) {
                        try segments.entries(of: number, from: $0, through: $1)
                    }
                }
            case .backwards:
                let start = min(version, end - 1)
                if start >= moved.next, let number {
                    result = try chainEvents(of: stream, floor: moved.next, from: start, direction: .backwards,
                                             maxCount: maxCount, offer: offer) {
                        try segments.entries(of: number, from: $0, through: $1)
                    }
                }
                if result.count < maxCount, moved.next > 0 {
                    result += try movedEvents(from: min(start, moved.next - 1), .backwards, maxCount - result.count)
                }
            }
            return result
        }
    }

    /// Events from a chain of stream `stream` (the segments', whose moved part
    /// ends at `floor`, or a bucket's, from 0), its entries holding versions
    /// from a version on and through another read by `entries`.
    private func chainEvents(of stream: String, floor: UInt64, from version: UInt64, direction: ReadDirection, maxCount: Int,
                             offer: BlockOffer, entries read: (UInt64, UInt64) throws -> [SplitSegment.Entry]) throws -> [RecordedEvent] {
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
        let entries = try read(lowest, through)
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
                    throw RingstoreError(.corruptData, "\(Self.kind(of: entry)) \(entry.path) is damaged at offset \(entry.offset): the entry of stream \"\(stream)\" from version \(first) does not decode (\(error))",
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
            let moved = try movedPart(of: stream, number: number)
            if version < moved.next, !moved.isBucketed, let handle = moved.handle {
                guard let block = try handle.withFile({ try $0.decodedBlock(containing: version, extent: extent) }) else { return nil }
                return (block, block.firstVersion..<(block.firstVersion + UInt64(block.count)), nil)
            }
            let inBucket = version < moved.next
            guard inBucket || version < segments.nextVersion(of: number),
                  let entry = try inBucket ? buckets.entries(of: number, from: version, through: version).first
                    : segments.entries(of: number, from: max(version, moved.next), through: version).first
            else { return nil }
            let block: StreamBlock.Decoded
            switch StreamBlock.decoded(from: entry.block[...], dictionary: entry.dictionary, extent: extent) {
            case .success(let decoded): block = decoded
            case .failure(let error):
                throw RingstoreError(.corruptData, "\(Self.kind(of: entry)) \(entry.path) is damaged at offset \(entry.offset): the entry of stream \"\(stream)\" from version \(entry.header.firstVersion) does not decode (\(error))",
                                     stream: stream, path: entry.path, offset: entry.offset)
            }
            // A bucket entry is the moved part itself; a segment entry may hold versions below it.
            let versions = max(block.firstVersion, inBucket ? 0 : moved.next)..<(block.firstVersion + UInt64(block.count))
            guard versions.contains(version) else { return nil }
            return (block, versions, inBucket ? nil : entry.link)
        }
    }

    /// What an entry's file is, for messages: a split segment or a bucket file.
    static func kind(of entry: SplitSegment.Entry) -> String {
        StreamBuckets.bucketAndGeneration(of: entry.segment) == nil ? "split segment" : "bucket file"
    }

    /// The version after the last one `stream`'s moved part holds (its file or
    /// its bucket chain; 0: neither): below it the segments hold nothing it needs.
    func movedNextVersion(of stream: String) throws -> UInt64 {
        let number = catalog.number(of: stream)
        return try withStripe(number) { try movedPart(of: stream, number: number).next }
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

    /// Whether the splitter may write stream `number`'s records into its file
    /// directly: only while the stream has no segment entries (its file must stay
    /// a prefix of its history) and no bucket chain (it may have no file yet).
    func takesDirectWrites(_ number: UInt32) -> Bool {
        segments.head(of: number) == nil && buckets.head(of: number) == nil
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
                // A bucketed stream's file would start past its history: its records go to the segments.
                if let number, buckets.nextVersion(of: number) > file.nextVersion {
                    throw RingstoreError(.invalidArgument, "stream \"\(stream)\" is in bucket \(buckets.bucket(of: number)): its records go to the split segments, not into a file",
                                         stream: stream)
                }
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

    /// Where a move put a stream's entries.
    enum MoveOutcome {
        /// Into its file: the file must be synced before ``SplitSegments/forgetMoved(_:)``.
        case file
        /// Into its bucket: the buckets must be synced (``StreamBuckets/pendingSync()``) before it.
        case bucket
    }

    /// Moves `stream`'s segment entries into its moved part: all of them, or those in
    /// segments up to `lastSegment` (the mover, emptying the oldest segment,
    /// takes a stream's entries up to the segment where the segments' budget
    /// ends, so that moving needs at most the budget again in free space).
    /// Returns where they went, for the caller's sync (after which it calls
    /// ``SplitSegments/forgetMoved(_:)``); nil when there was nothing to move.
    /// Not synced.
    ///
    /// Where to: the stream's file if it has one that reaches as far as its
    /// bucket chain. Otherwise, with ``movesIntoBuckets``, its bucket, unless
    /// its history would then pass ``promotedBytes``: the stream is then
    /// promoted, its bucket chain and the entries written into a file of its
    /// own (continuing whatever prefix an earlier, interrupted promotion left
    /// there), and the bucket chain forgotten, since the file now reaches
    /// further (its entries stay in the bucket file as garbage).
    ///
    /// `located`: the stream's entries in the segment being emptied
    /// (``SplitSegments/locateEntries(in:)``). The stream is moved only if
    /// some of them hold versions its moved part lacks (an earlier move through
    /// newer segments may have taken them all); when that segment is
    /// `lastSegment` they are read directly rather than found by walking the
    /// chain, as long as they continue the moved part.
    /// `fileEnd`: told the moved part's next version once the move is done (it
    /// only grows), so that the mover need not look it up again to check.
    @discardableResult
    func move(stream: String, number: UInt32, throughSegment lastSegment: UInt32 = .max,
              located: (segment: UInt32, entries: ArraySlice<SplitSegments.Located>)? = nil,
              fileEnd: ((UInt64) -> Void)? = nil) throws -> MoveOutcome? {
        guard let head = segments.head(of: number) else { return nil }
        return try withStripe(number) {
            let moved = try movedPart(of: stream, number: number)
            let floor = moved.next
            fileEnd?(floor)
            guard head.segmentNext > floor else {
                // The moved part holds them already (a replay, or a move whose sync is
                // pending): the caller syncs it before the chain is forgotten.
                segments.moved(stream: number, through: head.link, movedTo: floor, rawBytes: head.rawBytes, entries: head.entries)
                return moved.isBucketed ? .bucket : .file
            }
            if let located, !located.entries.contains(where: { $0.lastVersion >= floor }) {
                return nil  // what the segment holds of it is moved already
            }
            // A stream file that does not exist yet is created only if there is something to move.
            // The entries are read once, here: the moved part cannot grow meanwhile (the stripe is
            // held, and the splitter writes into a stream's file only while it has no entries).
            var entries = try located.flatMap { located in
                located.segment == lastSegment ? try segments.entries(located.entries, inSegment: located.segment, from: floor) : nil
            }
            if let first = entries?.first, first.header.firstVersion > floor {
                entries = nil  // not continuing the moved part: found by the chain instead (which names any gap)
            }
            let found = try (entries ?? segments.entries(of: number, from: floor, throughSegment: lastSegment))
                .prefix { $0.segment <= lastSegment }
            guard let last = found.last else { return nil }
            let rawBytes = found.reduce(UInt64(0)) { $0 + UInt64($1.header.rawLength) }
            var source = Array(found)
            if moved.fileNext == 0 || moved.isBucketed {
                if movesIntoBuckets, UInt64(moved.bucket?.rawBytes ?? 0) + rawBytes < Self.promotedBytes {
                    let blocks = try joinedBlocks(of: stream, entries: found, from: floor)
                    // The entry names the stream by number: the number's record must be durable first.
                    try catalog.makeDurable(through: number)
                    let next = try buckets.append(stream: number, blocks: blocks, compress: compress) {
                        try storeDictionary(adoptingFrom: found)
                    }
                    segments.moved(stream: number, through: last.link, movedTo: next, rawBytes: UInt32(clamping: rawBytes),
                                   entries: UInt32(found.count))
                    movedEntries.add(UInt64(found.count), ordering: .relaxed)
                    fileEnd?(next)
                    return .bucket
                }
                if moved.isBucketed { source = try buckets.entries(of: number, from: moved.fileNext) + source }
            }
            guard let handle = try moved.handle ?? directory.handle(for: stream, number: number, create: true) else { return nil }
            return try handle.withFile { file -> MoveOutcome? in
                guard let written = try moveEntries(of: stream, number: number, into: file, read: source) else { return nil }
                guard file.nextVersion >= floor else {
                    throw RingstoreError(.corruptData, "stream \"\(stream)\": leaving its bucket, its file reached only version \(file.nextVersion) of \(floor)",
                                         stream: stream, path: file.path.string)
                }
                segments.moved(stream: number, through: written.link, movedTo: file.nextVersion,
                               rawBytes: written.rawBytes, entries: written.entries)
                // The file reaches further than the chain now: reads take it, and the chain is garbage.
                if moved.isBucketed { buckets.forget(stream: number) }
                fileEnd?(file.nextVersion)
                return .file
            }
        }
    }

    /// The store's dictionary (``StreamFileDictionary``), adopted from a
    /// full-size dictionary of `entries`' segments when it has none yet (nil
    /// when none of theirs is full-size, or without compression).
    private func storeDictionary(adoptingFrom entries: some Collection<SplitSegment.Entry>) throws -> CompressionDictionary? {
        guard compress else { return nil }
        if let dictionary = directory.dictionary { return dictionary }
        guard let sample = entries.lazy.compactMap(\.dictionary).first(where: { $0.bytes.count == CompressionDictionary.maxBytes })
        else { return nil }
        return try directory.adoptDictionary(CompressionDictionary(UnsafeRawBufferPointer(sample.bytes)))
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
        return small ? try storeDictionary(adoptingFrom: entries) : nil
    }

    private struct Moved {
        var number: UInt32
        var link: SplitSegment.Link
        var rawBytes: UInt32
        var entries: UInt32
    }

    /// What of `entry` continues a stream at `expected`: its events from there
    /// on (nil when it holds none past it). Throws naming the entry's file and
    /// offset when it does not decode, and naming the gap when it starts past `expected`.
    private func rest(of entry: SplitSegment.Entry, stream: String, expected: UInt64) throws -> StreamBlock.RawBlock? {
        guard case .success(let raw) = StreamBlock.rawBlock(from: entry.block, dictionary: entry.dictionary),
              let rest = raw.dropping(below: expected) else {
            throw RingstoreError(.corruptData, "\(Self.kind(of: entry)) \(entry.path) is damaged at offset \(entry.offset): the entry of stream \"\(stream)\" from version \(entry.header.firstVersion) does not decode",
                                 stream: stream, path: entry.path, offset: entry.offset)
        }
        guard rest.count > 0 else { return nil }
        guard rest.firstVersion == expected else {
            throw RingstoreError(.corruptData, "stream \"\(stream)\": its split entries skip from version \(expected) to \(rest.firstVersion)",
                                 stream: stream)
        }
        return rest
    }

    /// `entries`' events from version `expected` on, joined into blocks of about
    /// ``movedBlockBytes`` (for a bucket, where each block is one entry).
    private func joinedBlocks(of stream: String, entries: some Collection<SplitSegment.Entry>,
                              from expected: UInt64) throws -> [StreamBlock.RawBlock] {
        var builder = StreamBlock.Builder(limit: Self.movedBlockBytes)
        var expected = expected
        for entry in entries {
            guard let rest = try rest(of: entry, stream: stream, expected: expected) else { continue }
            builder.add(rest)
            expected = rest.firstVersion + UInt64(rest.count)
        }
        return builder.finish()
    }

    /// Appends to `file` the stream's entries from the file's end on (its segment
    /// entries, or `read`: entries read already, from a bucket chain and then the
    /// segments), joined into blocks of about ``movedBlockBytes``. The caller tells the
    /// segments (``SplitSegments/moved(stream:through:movedTo:rawBytes:entries:)``) once
    /// it is done; the link and counts returned are those of the segment entries moved.
    private func moveEntries(of stream: String, number: UInt32?, into file: StreamFile,
                             read: [SplitSegment.Entry]? = nil) throws -> Moved? {
        guard let number, let head = segments.head(of: number), head.segmentNext > file.nextVersion else { return nil }
        let entries = try read ?? segments.entries(of: number, from: file.nextVersion)
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
            guard let rest = try rest(of: entry, stream: stream, expected: expected) else { continue }
            builder.add(rest)
            expected = rest.firstVersion + UInt64(rest.count)
        }
        ready += builder.finish().map { .built($0) }
        let segmentEntries = entries.filter { StreamBuckets.bucketAndGeneration(of: $0.segment) == nil }
        guard let last = segmentEntries.last else { return nil }
        if !ready.isEmpty { try file.append(sources: ready, compress: compress, dictionary: try fileDictionary(for: ready, from: entries)) }
        movedEntriesCopied.add(copied, ordering: .relaxed)
        movedEntries.add(UInt64(segmentEntries.count), ordering: .relaxed)
        let rawBytes = segmentEntries.reduce(UInt64(0)) { $0 + UInt64($1.header.rawLength) }
        return Moved(number: number, link: last.link, rawBytes: UInt32(clamping: rawBytes), entries: UInt32(segmentEntries.count))
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
