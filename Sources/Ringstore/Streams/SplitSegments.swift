import Synchronization
import SystemPackage

/// The split segments of a store (`split/*.seg`): where the splitter puts the
/// records of streams that do not yet have a block's worth, with one
/// sequential write per checkpoint instead of one write per stream file.
///
/// Why: on flash (an SD card or eMMC serves about a thousand small writes a
/// second) a checkpoint that writes a small block into the file of each of
/// 10,000 streams costs 10,000 random writes and their file-system metadata,
/// seconds during which the journal's flushes wait behind them in the
/// device's queue. Appending those blocks to one segment costs a few large
/// writes. The blocks reach their stream files later (``SegmentMover``), a
/// stream at a time once it has a block's worth or once its entries sit in the
/// oldest segment, paced so that the journal keeps the device.
///
/// Each stream's entries are chained newest to oldest (each envelope links to
/// the stream's previous entry), so memory holds one ``Head`` per stream that
/// has entries, whatever their number. What the segments hold of a stream
/// continues its stream file: versions below the file's next version were
/// moved already and are skipped by readers (the chain walk stops there).
///
/// Crash safety: segments are synced (and the folder, when a segment was
/// created) by the checkpointer before the journal's checkpoint moves, so
/// every entry before the checkpoint's boundary is durable. Entries after it
/// hold only records at or after the checkpoint, which the journal replays:
/// opening cuts the segments at the first entry whose first journal position
/// is at or after the checkpoint (or that is torn), so a version is never
/// stored twice.
final class SplitSegments: Sendable {
    typealias Link = SplitSegment.Link

    /// What the segments hold of one stream.
    struct Head: Sendable, Equatable {
        /// The newest entry.
        var link: Link
        /// The version after the newest entry's last.
        var segmentNext: UInt64
        /// The first version of the oldest entry not yet moved (a lower bound
        /// once some were moved: the stream file then holds those below it).
        var oldestVersion: UInt64
        /// Raw (uncompressed) bytes and entries in the chain since the last move.
        var rawBytes: UInt32
        var entries: UInt32
    }

    /// A finished segment's summary waiting for ``sync()``: its bytes, or to be built by walking the segment.
    enum DueSummary {
        case encoded([UInt8])
        case walk
    }

    /// One stream's blocks to append.
    struct Item {
        var stream: UInt32
        var blocks: [StreamBlock.RawBlock]
    }

    private struct State: ~Copyable {
        var segments: [UInt32: SplitSegment] = [:]
        var current: SplitSegment?
        var nextNumber: UInt32 = 1
        /// By stream number; `link.isNone` for streams without entries.
        var heads: [Head] = []
        /// A segment was created (or removed) since the folder was last synced.
        var folderDirty = false
        /// Entries before it are covered by a completed checkpoint (durable and
        /// never cut at open): the mover may move them.
        var checkpointed = Link(segment: 0, offset: 0)
        /// Damaged entries found at open (kept: reads of their streams report them).
        var damage: [Link] = []
        /// Streams whose chains reached ``ripeBytes`` since the mover last asked.
        var ripe: Set<UInt32> = []
        /// Streams whose every entry was copied into their files, not yet synced:
        /// their heads keep the last link until ``forgetMoved(_:)``.
        var movedUnsynced: Set<UInt32> = []
        /// The summary of the current segment, built as entries are appended
        /// (nil: the segment was opened with entries in it; its summary is
        /// built by walking it once it is finished).
        var building: SegmentSummary.Builder?
        /// Finished segments whose summaries ``sync()`` is to write.
        var summariesDue: [UInt32: DueSummary] = [:]
    }

    let folder: FilePath
    /// A segment past this size is closed and the next entries go to a new one.
    let segmentBytes: UInt64
    private let state: Mutex<State>

    /// How many segments opening took from their summaries instead of walking them.
    let segmentsOpenedFromSummaries: Int

    /// Bytes appended (stats) and entries written.
    let bytesWritten = Atomic<UInt64>(0)

    /// Opens the store's segments (creating the folder if needed), cuts what
    /// follows the checkpoint, and rebuilds every stream's ``Head``.
    ///
    /// `prepared`: what a walk over these segments learnt already (``Prepared``);
    /// taken instead of walking them again when it matches the folder.
    init(root: FilePath, checkpoint: UInt64, segmentBytes: UInt64 = 64 << 20, prepared: Prepared? = nil) throws {
        folder = root.appending("split")
        self.segmentBytes = segmentBytes
        var s = State()
        if !StorageDirectory.isDirectory(folder) {
            try StorageDirectory.create(folder)
            try StorageDirectory.sync(root)
        }
        let names = try StorageDirectory.entries(of: folder)
        let numbers = names.compactMap(SplitSegment.number(inFileName:)).sorted()
        var summarized = Set(names.compactMap(SegmentSummary.number(inFileName:)))
        var removed = false
        // A summary whose segment was deleted (a crash between the two removals).
        for number in summarized.subtracting(numbers) {
            StorageDirectory.remove(folder.appending(SegmentSummary.fileName(of: number)))
            summarized.remove(number)
            removed = true
        }
        if let prepared, let adopted = try Self.adopt(prepared, numbers: numbers, checkpoint: checkpoint, folder: folder) {
            s.nextNumber = (numbers.last ?? 0) &+ 1
            s.segments = adopted.segments
            s.current = adopted.current
            s.heads = adopted.heads
            s.checkpointed = Link(segment: adopted.current.number, offset: UInt32(adopted.current.end))
            for segment in adopted.segments.values where segment !== adopted.current && !summarized.contains(segment.number) {
                s.summariesDue[segment.number] = .walk
            }
            if removed { try StorageDirectory.sync(folder) }
            segmentsOpenedFromSummaries = 0
            state = Mutex(s)
            return
        }
        // Entries are not in journal order: one written for a reader holds records
        // beyond the scan, and the checkpoint's own entries may follow it with
        // positions before it. So what to keep is decided over all segments first:
        // everything up to the end of the last entry the journal no longer holds
        // (first position before the checkpoint; durable, since the checkpoint
        // synced it), and nothing after it — only replayable entries (from the
        // checkpoint on) or a torn tail lie there. Intact replayable entries before
        // that point are kept: they hold what the journal holds (the splitter makes
        // the journal durable before writing any entry), and the replay skips
        // their versions after comparing IDs and positions.
        //
        // Memory: what the walk finds is applied to the heads as soon as an entry the
        // journal no longer holds is met (everything up to it is kept); only the
        // visits after the latest such entry wait — replayable entries, at most about
        // the journal's worth — instead of every entry of every segment (millions).
        var opened: [(segment: SplitSegment, walked: UInt64, size: UInt64)] = []
        var lastNeeded: (index: Int, end: UInt64)? = nil
        var waiting: [(number: UInt32, visit: SplitSegment.Visit)] = []
        var found: [(segment: SplitSegment, size: UInt64, summary: SegmentSummary?)] = []
        var fromSummaries = 0
        for number in numbers {
            s.nextNumber = max(s.nextNumber, number &+ 1)
            guard let segment = try SplitSegment.open(number: number, in: folder) else {
                StorageDirectory.remove(folder.appending(SegmentSummary.fileName(of: number)))
                StorageDirectory.remove(folder.appending(SplitSegment.fileName(of: number)))
                removed = true
                continue
            }
            let size = try segment.file.size()
            // A summary stands for the walk only when it describes the file as it
            // is and opening keeps every entry in it (all began before the checkpoint).
            let summary = summarized.contains(number) ? SegmentSummary.read(segment: number, in: folder) : nil
            if summary?.segmentSize != size { summarized.remove(number) }  // to be written again, if the segment is finished
            found.append((segment, size, summary.flatMap { $0.segmentSize == size && $0.lastFirstPosition < checkpoint ? $0 : nil }))
        }
        // The next segment to walk is read ahead while this one is walked, so that
        // its reads overlap the walk's work instead of following it (from a cold
        // page cache the walk waited for the device about as long as it worked).
        func readAhead(after index: Int) {
            if let next = found[(index + 1)...].first(where: { $0.summary == nil }) { next.segment.file.readAhead(offset: 0, count: 0) }
        }
        readAhead(after: -1)
        for (index, (segment, size, summary)) in found.enumerated() {
            let number = segment.number
            if let summary {
                // Every entry is kept: what waits before them too.
                if !summary.rows.isEmpty {
                    for (number, visit) in waiting { Self.apply(visit, of: number, to: &s.heads, damage: &s.damage) }
                    waiting.removeAll()
                    summary.apply(to: &s.heads)
                    lastNeeded = (opened.count, size)
                }
                opened.append((segment, size, size))
                fromSummaries += 1
                continue
            }
            readAhead(after: index)
            let walked = try segment.walk(checkingPayloads: true, lookahead: Prefetch.rowsAhead) { visit, _, upcoming in
                // The heads are a row per stream, far beyond the caches with many streams:
                // the row of the entry a few ahead is asked for now (a hint, see ``Prefetch``).
                if let upcoming { Prefetch.element(of: &s.heads, at: Int(upcoming)) }
                waiting.append((number, visit))
                if case .entry(let offset, let envelope, let header, _) = visit, header.firstPosition < checkpoint {
                    lastNeeded = (opened.count, offset + UInt64(SplitSegment.envelopeSize + envelope.blockLength))
                    for (number, visit) in waiting { Self.apply(visit, of: number, to: &s.heads, damage: &s.damage) }
                    waiting.removeAll(keepingCapacity: waiting.count < 4096)
                }
                return true
            }
            opened.append((segment, walked, size))
        }
        // What still waits lies after the last needed entry: it is cut below.
        for (index, item) in opened.enumerated() {
            let segment = item.segment
            guard index <= (lastNeeded?.index ?? 0) else {
                StorageDirectory.remove(segment.path)
                StorageDirectory.remove(folder.appending(SegmentSummary.fileName(of: segment.number)))
                removed = true
                continue
            }
            // Where this segment ends: the last needed entry's end in its segment, the
            // walk's end before it; with nothing needed at all, where its entries start.
            let kept = lastNeeded.map { index == $0.index ? $0.end : item.walked } ?? segment.entriesStart
            if kept < item.size {
                // Its summary (if any) no longer describes it: gone first, so none ever does wrongly.
                if names.contains(SegmentSummary.fileName(of: segment.number)) {
                    try StorageDirectory.removeFile(folder.appending(SegmentSummary.fileName(of: segment.number)))
                    removed = true
                }
                try segment.truncate(to: kept)
                try segment.sync()
            }
            segment.end = kept
            segment.syncedEnd = kept
            s.segments[segment.number] = segment
            s.current = segment
        }
        // A segment opened with entries in it gets no builder (one that missed entries would be refused).
        if let current = s.current, current.end == current.entriesStart { s.building = SegmentSummary.Builder(segment: current.number) }
        // Finished segments without a summary get one, built by walking them (see ``sync()``).
        for segment in s.segments.values where segment !== s.current && !summarized.contains(segment.number) {
            s.summariesDue[segment.number] = .walk
        }
        if removed { try StorageDirectory.sync(folder) }
        s.checkpointed = s.current.map { Link(segment: $0.number, offset: UInt32($0.end)) } ?? Link(segment: 0, offset: 0)
        segmentsOpenedFromSummaries = fromSummaries
        state = Mutex(s)
    }

    /// Raw bytes from which on a stream's chain has a block's worth: the mover
    /// moves it into the stream's file without waiting for the budget.
    static let ripeBytes: UInt32 = 64 << 10

    /// Streams whose chains reached ``ripeBytes`` since the last call.
    func takeRipe() -> Set<UInt32> {
        state.withLock { s in
            defer { s.ripe = [] }
            return s.ripe
        }
    }

    /// Hands back ripe streams taken by ``takeRipe()`` and not moved (the mover
    /// stopped early), so that the next call returns them again.
    func returnRipe(_ numbers: some Sequence<UInt32>) {
        state.withLock { s in s.ripe.formUnion(numbers) }
    }

    /// Takes one visit of the opening walk into the heads (and damage list).
    private static func apply(_ visit: SplitSegment.Visit, of number: UInt32, to heads: inout [Head], damage: inout [Link]) {
        switch visit {
        case .entry(let offset, let envelope, let header, let intact):
            if !intact { damage.append(Link(segment: number, offset: UInt32(offset))) }
            record(&heads, stream: envelope.stream, link: Link(segment: number, offset: UInt32(offset)), header: header)
        case .damaged(let offset, _):
            // Damage among durable entries is kept for reads to report.
            damage.append(Link(segment: number, offset: UInt32(offset)))
        }
    }

    static func record(_ heads: inout [Head], stream: UInt32, link: Link, header: StreamBlock.Header) {
        let index = Int(stream)
        if index >= heads.count {
            heads.append(contentsOf: repeatElement(Head(link: .none, segmentNext: 0, oldestVersion: 0, rawBytes: 0, entries: 0),
                                                   count: index + 1 - heads.count))
        }
        let next = header.firstVersion + UInt64(header.count)
        if heads[index].link.isNone {
            heads[index] = Head(link: link, segmentNext: next, oldestVersion: header.firstVersion,
                                rawBytes: UInt32(clamping: header.rawLength), entries: 1)
        } else {
            heads[index].link = link
            heads[index].segmentNext = next
            heads[index].rawBytes = heads[index].rawBytes.addingReportingOverflow(UInt32(clamping: header.rawLength)).overflow
                ? .max : heads[index].rawBytes + UInt32(clamping: header.rawLength)
            heads[index].entries += 1
        }
    }

    // MARK: - Writing

    /// Appends each item's blocks (whose versions must continue what the stream
    /// holds) with one write, chaining them to each stream's previous entry.
    /// Not synced: see ``sync()``.
    func append(_ items: [Item], compress: Bool) throws {
        guard items.contains(where: { !$0.blocks.isEmpty }) else { return }
        // At the device's pace (see `SequentialWriteback`): no more than its
        // allowance of what the current segment handed to the device is still on
        // its way before more follows. Waited for outside the lock, which readers
        // and the mover take.
        if let (segment, range) = state.withLock({ s in s.current.flatMap { c in c.unfinishedWriteback.map { (c, $0) } } }) {
            segment.file.finishWriteback(from: range.lowerBound, count: range.upperBound - range.lowerBound)
            state.withLock { _ in segment.writebackFinished(upTo: range.upperBound) }
        }
        try state.withLock { s in
            if s.current == nil || s.current!.end >= segmentBytes {
                // Its dictionary: a sample of the events of this write, its first.
                let dictionary = compress ? CompressionDictionary.sample(of: items.lazy.flatMap(\.blocks)) : nil
                let segment = try SplitSegment.create(number: s.nextNumber, in: folder, dictionary: dictionary)
                if let finished = s.current {
                    finished.dictionary?.releaseCompressionStates()  // no more entries go there
                    if finished.end > finished.entriesStart {
                        let bytes = s.building.flatMap { $0.segment == finished.number ? $0.encoded(size: finished.end) : nil }
                        s.summariesDue[finished.number] = bytes.map(DueSummary.encoded) ?? .walk
                    }
                }
                // One builder, its storage kept: see ``SegmentSummary/Builder``.
                if s.building == nil { s.building = SegmentSummary.Builder(segment: segment.number) } else { s.building!.reset(segment: segment.number) }
                s.nextNumber += 1
                s.segments[segment.number] = segment
                s.current = segment
                s.folderDirty = true
            }
            let segment = s.current!
            var output: [UInt8] = []
            // Links and heads are computed first and applied only once the write succeeded.
            var updates: [(stream: UInt32, link: Link, header: StreamBlock.Header)] = []
            var previous: [UInt32: Link] = [:]
            var blockBytes: [UInt8] = []  // reused for every block
            for item in items {
                for block in item.blocks where block.count > 0 {
                    let offset = segment.end + UInt64(output.count)
                    guard offset < UInt64(UInt32.max) else {
                        throw RingstoreError(.invalidArgument, "split segment \(segment.path) would pass 4 GiB", path: segment.path.string)
                    }
                    let link = Link(segment: segment.number, offset: UInt32(offset))
                    let before = previous[item.stream] ?? (Int(item.stream) < s.heads.count ? s.heads[Int(item.stream)].link : .none)
                    blockBytes.removeAll(keepingCapacity: true)
                    StreamBlock.encode(block, compress: compress, dictionary: segment.dictionary, into: &blockBytes)
                    SplitSegment.encodeEnvelope(.init(stream: item.stream, previous: before, blockLength: blockBytes.count), into: &output)
                    output += blockBytes
                    previous[item.stream] = link
                    guard case .success(let header) = blockBytes.withUnsafeBytes({ StreamBlock.parseHeader($0) }) else {
                        preconditionFailure("a block just encoded must parse")
                    }
                    updates.append((item.stream, link, header))
                }
            }
            _ = try segment.append(output)
            bytesWritten.add(UInt64(output.count), ordering: .relaxed)
            for update in updates {
                Self.record(&s.heads, stream: update.stream, link: update.link, header: update.header)
                s.building?.add(stream: update.stream, offset: UInt64(update.link.offset), header: update.header)
                if s.heads[Int(update.stream)].rawBytes >= Self.ripeBytes { s.ripe.insert(update.stream) }
            }
        }
    }

    /// Where the next entry will start: a checkpoint's boundary, taken by the
    /// splitter when it submits the checkpoint (every entry before it holds
    /// only records before the checkpoint's split cursor).
    var end: Link {
        state.withLock { s in s.current.map { Link(segment: $0.number, offset: UInt32($0.end)) } ?? Link(segment: s.nextNumber, offset: 0) }
    }

    /// Makes every entry appended so far durable (and the folder, if a segment
    /// was created or removed since it was last synced).
    func sync() throws {
        let (unsynced, folderDirty): ([SplitSegment], Bool) = state.withLock { s in
            (s.segments.values.filter { $0.syncedEnd < $0.end || $0.syncFailed }.sorted { $0.number < $1.number },
             s.folderDirty)
        }
        // Appends happen on the splitter thread, syncs on the checkpointer's: a
        // segment's own state is only touched under the lock.
        for segment in unsynced {
            let (target, rewriteFrom): (UInt64, UInt64?) = state.withLock { _ in
                (segment.end, segment.syncFailed ? segment.syncedEnd : nil)
            }
            if let rewriteFrom { try segment.file.rewrite(from: rewriteFrom, to: target) }
            do {
                try segment.file.syncData()
            } catch {
                state.withLock { _ in segment.syncFailed = true }
                throw error
            }
            state.withLock { _ in
                segment.syncFailed = false
                segment.syncedEnd = max(segment.syncedEnd, target)
            }
        }
        let wroteSummaries = writeDueSummaries()
        if folderDirty || wroteSummaries {
            state.withLock { $0.folderDirty = false }
            do { try StorageDirectory.sync(folder) } catch {
                state.withLock { $0.folderDirty = true }
                throw error
            }
        }
    }

    /// Writes the summaries of finished segments that are durable (see
    /// ``SegmentSummary``), at most one of them built by walking its segment;
    /// true if it wrote any (the folder is then to be synced).
    ///
    /// Order: a segment's entries are durable (the sync before this) before its
    /// summary is written and synced, and the folder is synced after; a crash
    /// in between leaves no summary or a torn one, which opening does not
    /// trust (it walks the segment). A summary that cannot be written is given
    /// up, not retried: the segment is walked at open, as before summaries.
    private func writeDueSummaries() -> Bool {
        let due: [(segment: SplitSegment, end: UInt64, summary: DueSummary)] = state.withLock { s in
            s.summariesDue.compactMap { number, summary in
                guard let segment = s.segments[number], segment !== s.current, !segment.syncFailed,
                      segment.syncedEnd >= segment.end else { return nil }
                return (segment, segment.end, summary)
            }.sorted { $0.segment.number < $1.segment.number }
        }
        guard !due.isEmpty else { return false }
        var walked = false
        var wrote = false
        for (segment, end, due) in due {
            let summary: [UInt8]?
            switch due {
            case .encoded(let bytes): summary = bytes
            case .walk:
                if walked { continue }  // the next sync walks the next one
                walked = true
                summary = try? Self.summarize(segment, end: end)
            }
            if let summary {
                do {
                    try SegmentSummary.write(summary, segment: segment.number, in: folder)
                    wrote = true
                } catch {
                    StorageDirectory.remove(folder.appending(SegmentSummary.fileName(of: segment.number)))
                }
            }
            state.withLock { s in
                s.summariesDue.removeValue(forKey: segment.number)
                // Deleted meanwhile (the mover): no summary outlives its segment.
                if s.segments[segment.number] == nil {
                    StorageDirectory.remove(folder.appending(SegmentSummary.fileName(of: segment.number)))
                }
            }
        }
        return wrote
    }

    /// The summary's bytes of `segment`'s entries before `end`, by walking
    /// them; nil if anything there is no whole entry.
    static func summarize(_ segment: SplitSegment, end: UInt64) throws -> [UInt8]? {
        var builder = SegmentSummary.Builder(segment: segment.number)
        let reached = try segment.walk(checkingPayloads: false) { visit, _, _ in
            switch visit {
            case .entry(let offset, let envelope, let header, _):
                guard offset < end else { return false }
                builder.add(stream: envelope.stream, offset: offset, header: header)
            case .damaged:
                builder.spoil()
                return false
            }
            return true
        }
        return reached == end ? builder.encoded(size: end) : nil
    }

    /// Records that the journal's checkpoint now covers every entry before `boundary`.
    func checkpointCompleted(through boundary: Link) {
        state.withLock { s in if s.checkpointed < boundary { s.checkpointed = boundary } }
    }

    // MARK: - Reading

    /// What the segments hold of stream `number`, if anything.
    func head(of number: UInt32) -> Head? {
        state.withLock { s in
            let index = Int(number)
            guard index < s.heads.count, !s.heads[index].link.isNone else { return nil }
            return s.heads[index]
        }
    }

    /// The version after the last one the segments hold of stream `number` (0: none).
    func nextVersion(of number: UInt32) -> UInt64 { head(of: number)?.segmentNext ?? 0 }

    private func segment(_ number: UInt32) -> SplitSegment? { state.withLock { $0.segments[number] } }

    /// Segment `number`, which stream `stream`'s chain leads to for versions from `floor`.
    private func neededSegment(_ number: UInt32, stream: UInt32, from floor: UInt64) throws -> SplitSegment {
        guard let segment = segment(number) else {
            throw RingstoreError(.corruptData, "split segment \(SplitSegment.fileName(of: number)) is missing but stream number \(stream) still needs it (versions from \(floor))",
                                 path: folder.appending(SplitSegment.fileName(of: number)).string)
        }
        return segment
    }

    /// The chain walk and its kept listings (shared with the bucket files).
    private let chains = EntryChains()

    /// Stream `number`'s entries holding versions at or after `floor` (those
    /// below are in its stream file) and, with `through`, starting at or before
    /// that version, oldest first (see ``EntryChains/entries(of:head:next:from:through:throughFile:file:)``).
    ///
    /// With `lastSegment`, only entries in segments up to it are read and
    /// returned (the mover, emptying the oldest segment, takes a stream's
    /// entries up to where the segments' budget ends).
    func entries(of number: UInt32, from floor: UInt64, through last: UInt64? = nil,
                 throughSegment lastSegment: UInt32 = .max) throws -> [SplitSegment.Entry] {
        guard let head = head(of: number) else { return [] }
        return try chains.entries(of: number, head: head.link, next: head.segmentNext, from: floor, through: last,
                                  throughFile: lastSegment) { try neededSegment($0, stream: number, from: floor) }
    }

    /// One entry found by ``entriesAhead(from:bytes:including:)``.
    struct AheadEntry {
        var link: Link
        var stream: UInt32
        var header: StreamBlock.Header
        /// The whole block (header and stored bytes), not yet checked against its payload checksum.
        var block: ArraySlice<UInt8>
        /// The segment's dictionary, for decoding `block`.
        var dictionary: CompressionDictionary?
    }

    /// The whole entries of segment `link.segment` from `link.offset` on that
    /// lie within `bytes` bytes and below the segment's end, read with one
    /// `pread`; it stops at the first that is not a whole entry (damage is
    /// for the reads of that stream to report). For `$all`, which reads a
    /// checkpoint's entries in the order they were written (see ``AllReadWindow``).
    ///
    /// Only entries of streams `including` accepts are returned; the others
    /// are stepped over by their envelope alone (most of a read-ahead is of
    /// streams the reader already holds a block of, and checking their block
    /// headers cost about a fifth of a `$all` event). `end` is the segment
    /// offset where the whole entries walked end.
    func entriesAhead(from link: Link, bytes: Int, including: (UInt32) -> Bool = { _ in true })
        throws -> (entries: [AheadEntry], end: UInt32) {
        guard let (segment, end) = state.withLock({ s in s.segments[link.segment].map { ($0, $0.end) } }),
              UInt64(link.offset) < end else { return ([], link.offset) }
        let length = Int(min(UInt64(bytes), end - UInt64(link.offset)))
        // Not zeroed first: only the `got` bytes read are looked at.
        var got = 0
        let chunk = try [UInt8](unsafeUninitializedCapacity: length) { buffer, initialized in
            initialized = try segment.file.read(into: UnsafeMutableRawBufferPointer(buffer), at: UInt64(link.offset))
            got = initialized
        }
        var result: [AheadEntry] = []
        var at = 0
        while at + SplitSegment.envelopeSize + StreamBlock.headerSize <= got {
            guard let envelope = chunk.withUnsafeBytes({ SplitSegment.parseEnvelope(UnsafeRawBufferPointer(rebasing: $0[at...])) }),
                  at + SplitSegment.envelopeSize + envelope.blockLength <= got
            else { break }
            if !including(envelope.stream) {
                at += SplitSegment.envelopeSize + envelope.blockLength
                continue
            }
            guard case .success(let header) = StreamBlock.parseHeader(chunk[(at + SplitSegment.envelopeSize)...]),
                  header.totalLength == envelope.blockLength
            else { break }
            let blockStart = at + SplitSegment.envelopeSize
            result.append(AheadEntry(link: Link(segment: link.segment, offset: link.offset + UInt32(at)), stream: envelope.stream,
                                     header: header, block: chunk[blockStart..<(blockStart + envelope.blockLength)],
                                     dictionary: segment.dictionary))
            at = blockStart + envelope.blockLength
        }
        return (result, link.offset + UInt32(at))
    }

    // MARK: - Housekeeping

    /// The live segments' bytes in all.
    var totalBytes: UInt64 {
        state.withLock { s in s.segments.values.reduce(0) { $0 + $1.end } }
    }

    /// The bytes of the live segments that a completed checkpoint covers whole
    /// (those before the checkpointed boundary's segment): what the mover can
    /// empty now.
    var checkpointedBytes: UInt64 {
        state.withLock { s in
            s.segments.values.reduce(0) { $0 + ($1.number < s.checkpointed.segment ? $1.end : 0) }
        }
    }

    /// The live segments' numbers and sizes, oldest first.
    func segmentSizes() -> [(number: UInt32, bytes: UInt64)] {
        state.withLock { s in s.segments.values.map { ($0.number, $0.end) }.sorted { $0.number < $1.number } }
    }

    /// Damaged entries found when the segments were opened.
    var damagedEntries: [Link] { state.withLock { $0.damage } }

    /// The boundary of the last completed checkpoint.
    var checkpointedBoundary: Link { state.withLock { $0.checkpointed } }

    /// Where one entry of a segment lies, found by ``locateEntries(in:)``.
    struct Located: Sendable {
        var stream: UInt32
        var offset: UInt32
        var blockLength: UInt32
        /// The last version the entry holds.
        var lastVersion: UInt64
    }

    /// The last version each stream's entries in `located` hold (what
    /// ``lastVersions(in:)`` finds, from a listing of a whole segment).
    static func lastVersions(in located: [Located]) -> [UInt32: UInt64] {
        var last: [UInt32: UInt64] = [:]
        for entry in located { last[entry.stream] = max(last[entry.stream] ?? 0, entry.lastVersion) }
        return last
    }

    /// Every entry of segment `number`, by walking it once: sorted by stream
    /// number, each stream's in file order (the order of its chain).
    ///
    /// Why: the mover empties the oldest segment stream by stream; finding a
    /// stream's entries there by walking its chain back from its head read one
    /// envelope in every newer segment (with 100,000 streams, about 50 `pread`s
    /// a stream for its one or two entries in the oldest).
    func locateEntries(in number: UInt32) throws -> [Located] {
        guard let segment = segment(number) else { return [] }
        var located: [Located] = []
        let end = state.withLock { _ in segment.end }
        let reached = try segment.scan { offset, envelope, header in
            guard offset < end else { return false }
            located.append(Located(stream: envelope.stream, offset: UInt32(offset), blockLength: UInt32(envelope.blockLength),
                                   lastVersion: header.firstVersion + UInt64(header.count) - 1))
            return true
        }
        guard reached >= end else {
            throw segment.damaged(at: reached, "entry below the segment's end cannot be read")
        }
        return located.sorted { ($0.stream, $0.offset) < ($1.stream, $1.offset) }
    }

    /// Reads the entries `located` (one stream's, in segment `number`, in file
    /// order) that hold versions at or after `floor`, one `pread` each.
    func entries(_ located: some Collection<Located>, inSegment number: UInt32, from floor: UInt64) throws -> [SplitSegment.Entry] {
        guard let segment = segment(number) else { return [] }
        var result: [SplitSegment.Entry] = []
        for entry in located where entry.lastVersion >= floor {
            let read = try segment.entry(at: UInt64(entry.offset), blockLength: Int(entry.blockLength))
            guard read.envelope.stream == entry.stream else {
                throw segment.damaged(at: UInt64(entry.offset), "entry belongs to stream number \(read.envelope.stream), not \(entry.stream) as listed")
            }
            result.append(read)
        }
        return result
    }

    /// Whether segment `number` takes new entries (the splitter's current
    /// segment). Once it does not, it never will again: its entries stay as
    /// they are until it is deleted.
    func isBeingWritten(_ number: UInt32) -> Bool {
        state.withLock { $0.current?.number == number }
    }

    /// The last version segment `number` holds of each stream in it, by walking it.
    func lastVersions(in number: UInt32) throws -> [UInt32: UInt64] {
        Self.lastVersions(in: try locateEntries(in: number))
    }

    /// Forgets stream `number`'s entries up to and including `link` (`rawBytes`
    /// and `entries` in all) now that its stream file holds every version below
    /// `movedTo` (not yet synced).
    ///
    /// When that was every entry, the head still keeps its link until
    /// ``forgetMoved(_:)`` is told the file is synced: an entry appended in
    /// between must chain back to the moved ones, since a power cut before the
    /// sync can take the copies from the file, and a reader (or the next open)
    /// then finds those versions only by following the chain into the segment,
    /// which is deleted only after the sync. (Clearing the head at once left such
    /// an entry linking nowhere: "entry links forward" on every read of the stream.)
    func moved(stream number: UInt32, through link: Link, movedTo: UInt64, rawBytes: UInt32, entries: UInt32) {
        state.withLock { s in
            let index = Int(number)
            guard index < s.heads.count, !s.heads[index].link.isNone else { return }
            if s.heads[index].link == link {
                s.heads[index].oldestVersion = max(s.heads[index].oldestVersion, movedTo)
                s.heads[index].rawBytes = 0
                s.heads[index].entries = 0
                s.movedUnsynced.insert(number)
            } else {
                s.heads[index].oldestVersion = max(s.heads[index].oldestVersion, movedTo)
                s.heads[index].rawBytes -= min(s.heads[index].rawBytes, rawBytes)
                s.heads[index].entries -= min(s.heads[index].entries, entries)
            }
        }
    }

    /// Clears the heads of `numbers` whose every entry was moved, now that their
    /// files are synced (unless entries were appended since).
    func forgetMoved(_ numbers: some Sequence<UInt32>) {
        state.withLock { s in
            guard !s.movedUnsynced.isEmpty else { return }
            for number in numbers where s.movedUnsynced.remove(number) != nil {
                let index = Int(number)
                if index < s.heads.count, s.heads[index].entries == 0 {
                    s.heads[index] = Head(link: .none, segmentNext: 0, oldestVersion: 0, rawBytes: 0, entries: 0)
                }
            }
        }
    }

    /// Deletes segment `number` (every entry in it was moved and the stream
    /// files holding them are durable). Readers holding it finish their reads.
    func remove(_ number: UInt32) {
        state.withLock { s in
            guard let segment = s.segments.removeValue(forKey: number) else { return }
            if s.current === segment { s.current = nil }
            // The segment first: a summary left by a crash between is removed at open.
            StorageDirectory.remove(segment.path)
            StorageDirectory.remove(folder.appending(SegmentSummary.fileName(of: number)))
            s.summariesDue.removeValue(forKey: number)
            s.folderDirty = true
        }
    }
}
