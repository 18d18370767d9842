import Synchronization

/// The memory all ``AllReadWindow``s of one store may hold together
/// (`Configuration.allReadWindowBytes`), shared with the store's block cache.
///
/// Why shared: a store that serves stream reads and then a `$all` pass held a
/// full block cache beside full windows, both budgets at once (with 100,000
/// streams about 16 MiB of the 130 MiB peak). Now the windows and the block
/// cache (``BlockCache/shareLimit(_:windows:)``) together stay within
/// `limit`: a window that needs room first evicts the cache's oldest blocks
/// (a window's block is needed again within its pass, a cached one only
/// perhaps), and the cache keeps at most what the windows leave.
final class DecodedBlockBudget: Sendable {
    let limit: Int
    private let used = Atomic<Int>(0)
    private let cache: BlockCache?

    init(limit: Int, sharedWith cache: BlockCache? = nil) {
        self.limit = max(0, limit)
        self.cache = cache
        cache?.shareLimit(self.limit, windows: self)
    }

    /// Reserves `bytes` if that stays within the limit, evicting blocks of the shared cache for room.
    func take(_ bytes: Int) -> Bool {
        var current = used.load(ordering: .relaxed)
        while true {
            guard current + bytes <= limit else { return false }
            if let cache, current + bytes + cache.heldBytes > limit { cache.shrink(toAtMost: limit - current - bytes) }
            let (exchanged, original) = used.compareExchange(expected: current, desired: current + bytes, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
    }

    func give(_ bytes: Int) { used.subtract(bytes, ordering: .relaxed) }

    /// Bytes held by all windows (tests).
    var inUse: Int { used.load(ordering: .relaxed) }
}

/// One `$all` reader's decoded blocks, kept from one batch of global-index
/// entries to the next until every version of them the reader will need
/// has been handed out.
///
/// Why: with thousands of interleaved streams, consecutive `$all` events lie
/// in different blocks, and a block's events are spread over about one
/// checkpoint's span of the global order (a split segment entry holds what one
/// stream gained between two checkpoints). Reading event by event decoded (and
/// `pread`) a block per event once the shared block cache was smaller than
/// that span. Here each block is read and decompressed once per pass, kept as
/// raw bytes (``StreamBlock/Decoded``, about its size on disk uncompressed),
/// and each event is made once, when it is handed out.
///
/// Reading forwards, a block found in a split segment also brings the entries
/// written after it in that segment (``readAheadBytes``, one `pread`): a
/// checkpoint writes the entries of all its streams one after another, and
/// `$all` needs all of them within that checkpoint's span, so one large read
/// replaces thousands of small ones. An entry read ahead is kept only if all
/// its events lie ahead of the reader (its first journal position is beyond
/// the event being read) and its stream has no block kept; the events of any
/// stored copy of a version are the same (moving an entry into a stream file
/// copies it; a replay skips versions already stored after comparing them), so
/// it does not matter whether the stream's file holds them by now.
///
/// Within a stream `$all` meets versions in order (descending when reading
/// backwards), so one block per stream is kept, keyed by stream number, and
/// dropped as soon as its last needed version (its first, backwards) has been
/// handed out, or when the stream moves on to another block. Memory is bounded
/// by a ``DecodedBlockBudget`` shared by the store's readers: a block that
/// does not fit is read, serves every entry of the current batch it holds, and
/// is dropped; the batch's events are then still in order, and the block is
/// read again in a later batch that needs it (slower, never wrong). Reading
/// ahead stops while the budget is three-quarters used, so that blocks needed
/// now find room. Nothing is assumed about order for correctness: a kept block
/// serves an entry only if it holds its version, so a reader that jumps back
/// simply reads blocks again.
///
/// Blocks are immutable once stored (files and segments are append-only), so
/// a kept block never goes stale; what `$all` shows (metadata, deletes) is
/// decided afterwards, on the events, as for any other read.
final class AllReadWindow: Sendable {
    /// A class, so that looking one up in the table costs one reference count, not one per buffer.
    private final class Kept: Sendable {
        let block: StreamBlock.Decoded
        /// The versions of `block` this window serves (see ``SplitStore/decodedBlock(of:number:containing:)``).
        let versions: Range<UInt64>
        let name: String
        let cost: Int

        /// The event at `version`, if this block serves it. A method of its own so
        /// that the block is used where it is kept (copying it out retained both its buffers).
        func event(_ version: UInt64, types: inout EventTypeCache) -> RecordedEvent? {
            guard versions.contains(version) else { return nil }
            return block.event(at: Int(version - block.firstVersion), stream: name, types: &types)
        }

        init(block: StreamBlock.Decoded, versions: Range<UInt64>, name: String, cost: Int) {
            self.block = block
            self.versions = versions
            self.name = name
            self.cost = cost
        }
    }

    private struct State: ~Copyable {
        /// By stream number (a dense array, as the splitter's pending streams:
        /// a lookup per event, and hashing a number through `Hasher` cost about
        /// a tenth of handing an event out); 8 bytes a stream, released when the
        /// reader reaches the ring.
        var kept: [Kept?] = []
        var keptCount = 0
        var bytes = 0
        /// The global-index entry the last forward batch ended with, and its position.
        var lastEntry: (index: Int, position: UInt64)?
        /// Segment stretches read ahead lately, at most ``AllReadWindow/readAheadStretchesKept``
        /// (so that a miss inside one does not read it again).
        var readAhead: [(segment: UInt32, range: Range<UInt32>)] = []
        /// How far along the global order the kept parts reach (see ``AllReadWindow/Horizon``).
        var horizon: Horizon
        /// About how many journal bytes lie between two consecutive events of
        /// one stream: a running average over the blocks decoded forwards (see
        /// ``AllReadWindow/extent(for:backwards:horizon:spacing:)``).
        var spacing: Double?
    }

    private let state: Mutex<State>
    private let budget: DecodedBlockBudget

    /// A kept block's cost beyond its bytes: the table entry, the object and the block's two buffers.
    static let overheadPerBlock = 160
    /// How much of a segment one read ahead covers.
    static let readAheadBytes = 1 << 20
    /// How many stretches read ahead are remembered, so that a miss inside one
    /// reads only its own entry. Why so many: an entry read ahead is kept only
    /// for a stream with no block kept, so a stretch leaves behind the entries
    /// of streams that had one; each of those missed later and, with only 8
    /// remembered, read its stretch again from there (over 100,000 streams
    /// whose history had mostly moved into bucket files, most of a `$all` pass
    /// was reading the same stretches again: 1.8 times as fast with 256). The
    /// cost: over a store still in its segments a miss no longer reads ahead
    /// again from inside a stretch, which brought the entries left behind
    /// whose streams had since dropped their block (about a tenth slower there).
    static let readAheadStretchesKept = 256

    init(budget: DecodedBlockBudget) {
        self.budget = budget
        state = Mutex(State(horizon: Horizon(limit: budget.limit)))
    }

    deinit {
        let bytes = state.withLock { $0.bytes }
        budget.give(bytes)
    }

    /// Blocks kept, and their cost (tests).
    var counters: (blocks: Int, bytes: Int) { state.withLock { ($0.keptCount, $0.bytes) } }

    /// Where in the global index the entry at or after `position` is, when
    /// `position` directly follows the last forward batch (the next page of the
    /// same reader): that spares the page a binary search over the index file.
    func indexEntry(atOrAfter position: UInt64) -> Int? {
        state.withLock { s in
            guard let last = s.lastEntry, last.position < position, last.position + 1 == position else { return nil }
            return last.index + 1
        }
    }

    /// Records the last global-index entry a forward batch read (see ``indexEntry(atOrAfter:)``).
    func noteIndexEntry(_ index: Int, position: UInt64) {
        state.withLock { $0.lastEntry = (index, position) }
    }

    /// Drops every kept block (the reader continues in the ring, past everything stored).
    func clear() {
        let bytes = state.withLock { s in
            defer {
                s.kept = []
                s.keptCount = 0
                s.bytes = 0
                s.readAhead.removeAll()
            }
            return s.bytes
        }
        budget.give(bytes)
    }

    /// The events `entries` name, in their order: forwards (`backwards` false)
    /// each stream's versions rise through the entries, backwards they fall.
    /// Each block needed is read from `split` at most once for the batch.
    func events(for entries: [GlobalIndex.Entry], backwards: Bool, split: SplitStore, indexPath: String) throws -> [RecordedEvent] {
        try state.withLock { s in
            var result: [RecordedEvent] = []
            result.reserveCapacity(entries.count)
            // Events served ahead from blocks that did not fit the budget, by entry index.
            var servedAhead: [RecordedEvent?] = []
            var entriesOfStream: [UInt32: [Int]] = [:]
            var types = EventTypeCache()
            let horizon = s.horizon.bytes
            var short = false  // a part did not fit the budget
            defer { s.horizon.adjust(short: short, inUse: budget.inUse) }
            for i in entries.indices {
                if !servedAhead.isEmpty, let event = servedAhead[i] {
                    result.append(event)
                    continue
                }
                let entry = entries[i]
                let index = Int(entry.stream)
                if index < s.kept.count, let event = s.kept[index]?.event(entry.version, types: &types) {
                    result.append(event)
                    if entry.version == (backwards ? s.kept[index]!.versions.lowerBound : s.kept[index]!.versions.upperBound - 1) {
                        drop(entry.stream, &s)
                    }
                    continue
                }
                // Another block of this stream: the one kept (if any) is behind the reader.
                drop(entry.stream, &s)
                guard let name = split.catalog.name(of: entry.stream) else {
                    throw RingstoreError(.corruptData, "global index names stream number \(entry.stream), which the catalog does not know",
                                         path: indexPath)
                }
                guard let (block, versions, link) = try split.decodedBlock(
                    of: name, number: entry.stream, containing: entry.version,
                    extent: Self.extent(for: entry, backwards: backwards, horizon: horizon, spacing: s.spacing)) else {
                    throw RingstoreError(.corruptData, "stream \"\(name)\": its stream file and split segments lack version \(entry.version), which the global index lists",
                                         stream: name, path: indexPath)
                }
                result.append(block.event(at: Int(entry.version - block.firstVersion), stream: name, types: &types))
                if !backwards && block.count > 1 {
                    let last = block.position(at: block.count - 1), first = block.position(at: 0)
                    if last > first {
                        let sample = Double(last - first) / Double(block.count - 1)
                        s.spacing = s.spacing.map { $0 * 0.875 + sample * 0.125 } ?? sample
                    }
                }
                if let link, !backwards { try readAhead(from: link, after: entry.position, split: split, &s) }
                if entry.version == (backwards ? versions.lowerBound : versions.upperBound - 1) { continue }
                var (part, partVersions) = Self.part(of: block, serving: versions, after: entry, backwards: backwards, horizon: horizon)
                var kept = false
                while !partVersions.isEmpty {
                    let cost = part.cost + Self.overheadPerBlock
                    if budget.take(cost) {
                        drop(entry.stream, &s)  // read ahead just now, from an entry before this one
                        keep(Kept(block: part, versions: partVersions, name: name, cost: cost), for: entry.stream, &s)
                        kept = true
                        break
                    }
                    // No room for all of it: the nearer half.
                    short = true
                    guard partVersions.count > 1 else { break }
                    (part, partVersions) = Self.nearerHalf(of: part, serving: partVersions, backwards: backwards)
                }
                if kept { continue }
                // No room: serve the rest of this batch's entries this block holds now.
                if entriesOfStream.isEmpty {
                    for j in entries.indices { entriesOfStream[entries[j].stream, default: []].append(j) }
                }
                for j in entriesOfStream[entry.stream] ?? [] where j > i && versions.contains(entries[j].version) {
                    if servedAhead.isEmpty { servedAhead = Array(repeating: nil, count: entries.count) }
                    servedAhead[j] = block.event(at: Int(entries[j].version - block.firstVersion), stream: name, types: &types)
                }
            }
            return result
        }
    }

    /// How far along the global order (in journal bytes) a kept block serves
    /// the reader: kept are only a block's events within the horizon.
    ///
    /// Why: a block kept whole until its last version is handed out holds, in
    /// a stream file written by the segment mover or by `compact` (blocks of
    /// tens of kilobytes, hundreds of events spread over much of the store's
    /// history), events the reader reaches only millions of events later. A
    /// few thousand such blocks filled the budget, and every other stream's
    /// block was then decoded again for each event (`$all` over a compacted
    /// store of 10,000 streams ran at 75,000-83,000 events/s, most of its
    /// time in LZ4). With a horizon the budget holds a part of every stream's
    /// block, and a block is decoded about once per horizon the reader crosses.
    ///
    /// Why it adapts: what the parts cost per journal byte of horizon depends
    /// on the store (a part of one event costs its bytes and about 230 more),
    /// and other readers share the budget. A horizon too long for the budget
    /// is worse than a short one (parts that do not fit are cut, then not kept
    /// at all, and the reader decodes a block per event again: a fixed
    /// horizon of 1.5 times the budget read half as fast as one of the
    /// budget). So it starts at half the budget, shrinks by a quarter after a
    /// batch in which a part did not fit, and grows by an eighth, up to the
    /// budget, after one that left at least a quarter of the budget free.
    struct Horizon {
        private(set) var bytes: UInt64
        private let limit: Int

        init(limit: Int) {
            self.limit = limit
            bytes = UInt64(max(limit / 2, Self.shortest))
        }

        static let shortest = 64 << 10

        mutating func adjust(short: Bool, inUse: Int) {
            if short {
                bytes = max(UInt64(Self.shortest), bytes - bytes / 4)
            } else if inUse <= limit / 4 * 3 {
                bytes = min(UInt64(max(limit, Self.shortest)), bytes + bytes / 8)
            }
        }
    }

    /// How much of the block holding `entry` to decompress: about what
    /// ``part(of:serving:after:backwards:horizon:)`` will keep of it, and the
    /// entry itself. Forwards, the stream's events within the horizon are
    /// reckoned from how densely its events before `entry` in the block lie
    /// in the global order (with a quarter more, and one); backwards, the
    /// block up to `entry`. For the first event of a block there is nothing
    /// to reckon from in the block, so `spacing`, the journal bytes between
    /// two events of one stream in the blocks decoded before, stands in; with
    /// none yet the block decodes whole. (Decoding a compacted store's blocks
    /// whole at their first event was a fifth of its `$all` pass: each
    /// stream's first block is met at the start, and only about a horizon's
    /// worth of it is kept.) Only a reckoning: a part that falls short leaves
    /// a shorter slice kept, and one short of `entry` makes the block decode
    /// whole.
    static func extent(for entry: GlobalIndex.Entry, backwards: Bool, horizon: UInt64, spacing: Double? = nil) -> StreamBlock.DecodeExtent {
        StreamBlock.DecodeExtent(version: entry.version) { header in
            guard header.count > 0, entry.version >= header.firstVersion else { return .max }
            let index = Int(entry.version - header.firstVersion)
            let events: Double
            if backwards {
                events = Double(index + 1) * 1.25
            } else {
                let perJournalByte: Double
                if index > 0, entry.position > header.firstPosition {
                    perJournalByte = Double(index) / Double(entry.position - header.firstPosition)
                } else if let spacing, spacing >= 1 {
                    perJournalByte = 1 / spacing
                } else {
                    return .max
                }
                events = Double(index + 1) + perJournalByte * Double(horizon) * 1.25 + 1
            }
            guard events < Double(header.count) else { return .max }
            return Int(Double(header.rawLength) * events / Double(header.count)) + 256
        }
    }

    /// The part of `block` to keep after serving `entry`: its versions beyond
    /// `entry`'s (below it, backwards) among `versions`, whose journal positions
    /// lie within `horizon` of `entry`'s: the block itself when that is all it
    /// has left and at least half of it, else a copy of them (a part kept as
    /// the block would hold the events already served too).
    private static func part(of block: StreamBlock.Decoded, serving versions: Range<UInt64>, after entry: GlobalIndex.Entry,
                             backwards: Bool, horizon: UInt64) -> (block: StreamBlock.Decoded, versions: Range<UInt64>) {
        let here = Int(entry.version - block.firstVersion)
        let indices: Range<Int>
        let whole: Bool
        if backwards {
            let floor = entry.position > horizon ? entry.position - horizon : 0
            let lowest = Int(versions.lowerBound - block.firstVersion)
            var low = here
            while low > lowest && block.position(at: low - 1) >= floor { low -= 1 }
            indices = low..<here
            whole = low == lowest
        } else {
            let ceiling = entry.position + horizon
            let end = Int(versions.upperBound - block.firstVersion)
            var high = here + 1
            while high < end && block.position(at: high) <= ceiling { high += 1 }
            indices = (here + 1)..<high
            whole = high == end
        }
        let partVersions = (block.firstVersion + UInt64(indices.lowerBound))..<(block.firstVersion + UInt64(indices.upperBound))
        // Everything the reader still needs of the block lies within the horizon, and it is
        // at least half the block: kept as it is, not copied.
        return (whole && indices.count * 2 >= block.count ? block : block.slice(indices), partVersions)
    }

    /// The half of a part to keep nearer the reader: its lower versions, or
    /// its upper ones backwards.
    private static func nearerHalf(of part: StreamBlock.Decoded, serving versions: Range<UInt64>,
                                   backwards: Bool) -> (block: StreamBlock.Decoded, versions: Range<UInt64>) {
        let half = UInt64(versions.count / 2)
        let nearer = backwards ? (versions.upperBound - half)..<versions.upperBound : versions.lowerBound..<(versions.lowerBound + half)
        let indices = Int(nearer.lowerBound - part.firstVersion)..<Int(nearer.upperBound - part.firstVersion)
        return (part.slice(indices), nearer)
    }

    /// Keeps the segment entries after `link` (within ``readAheadBytes``) whose
    /// events all lie beyond journal position `position`, for streams with no
    /// block kept, while the budget is less than three-quarters used. Entries
    /// that are damaged or do not decode are left for the reads that need them
    /// to report.
    private func readAhead(from link: SplitSegment.Link, after position: UInt64, split: SplitStore, _ s: inout State) throws {
        if s.readAhead.contains(where: { $0.segment == link.segment && $0.range.contains(link.offset) }) { return }
        guard budget.inUse < budget.limit / 4 * 3 else { return }
        let (ahead, end) = try Self.entriesAhead(from: link, split: split, skipping: s.kept)
        guard end > link.offset else { return }
        if s.readAhead.count >= Self.readAheadStretchesKept { s.readAhead.removeFirst() }
        s.readAhead.append((link.segment, link.offset..<end))
        for entry in ahead where entry.link != link && entry.header.firstPosition > position && Self.kept(entry.stream, in: s) == nil {
            guard budget.inUse < budget.limit / 4 * 3 else { return }
            guard case .success(let block) = StreamBlock.decoded(from: entry.block, parsedHeader: entry.header, dictionary: entry.dictionary),
                  let name = split.catalog.name(of: entry.stream) else { continue }
            let cost = block.cost + Self.overheadPerBlock
            guard budget.take(cost) else { return }
            keep(Kept(block: block, versions: block.firstVersion..<(block.firstVersion + UInt64(block.count)), name: name, cost: cost),
                 for: entry.stream, &s)
        }
    }

    /// The segment entries read ahead from `link`, stepping over those of
    /// streams with a block in `kept` unread (the kept block is read first).
    /// A function of its own so that `kept` is let go before the window's
    /// table changes again (holding it meanwhile would copy the table).
    private static func entriesAhead(from link: SplitSegment.Link, split: SplitStore, skipping kept: [Kept?])
        throws -> (entries: [SplitSegments.AheadEntry], end: UInt32) {
        try split.segments.entriesAhead(from: link, bytes: readAheadBytes) { stream in
            Int(stream) >= kept.count || kept[Int(stream)] == nil
        }
    }

    private static func kept(_ stream: UInt32, in s: borrowing State) -> Kept? {
        Int(stream) < s.kept.count ? s.kept[Int(stream)] : nil
    }

    /// Keeps `kept` (its cost already taken from the budget) for `stream`, which has nothing kept.
    private func keep(_ kept: Kept, for stream: UInt32, _ s: inout State) {
        let index = Int(stream)
        if index >= s.kept.count { s.kept.append(contentsOf: repeatElement(nil, count: max(index + 1 - s.kept.count, s.kept.count / 2))) }
        s.kept[index] = kept
        s.keptCount += 1
        s.bytes += kept.cost
    }

    private func drop(_ stream: UInt32, _ s: inout State) {
        let index = Int(stream)
        guard index < s.kept.count, let kept = s.kept[index] else { return }
        s.kept[index] = nil
        s.keptCount -= 1
        s.bytes -= kept.cost
        budget.give(kept.cost)
    }
}
