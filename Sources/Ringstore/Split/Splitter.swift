#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Synchronization

/// Copies records from the journal into per-stream files, in the background,
/// and moves the journal's checkpoint once those files are durable.
///
/// The path of a record after it is acknowledged:
/// 1. **Scan** (on the splitter thread): read the journal from the scan cursor
///    towards the acknowledged cursor (up to `roundBytes` at a time), file each
///    record's ring position under its stream (see `Pending` for why records
///    wait there), and append their global-index entries with one write. A
///    stream with a good block's worth pending (``eagerBlockBytes``) is written
///    at once.
/// 2. **Checkpoint** (when a quarter of the ring is scanned but not yet
///    checkpointed — up to half with many streams pending, see
///    ``checkpointBytes(capacity:pendingStreams:)`` — when writers are short of
///    space, a second after the journal goes quiet, at least every ten seconds,
///    and on close): write every stream's pending
///    records to its file (one write per stream), publish the new split cursor
///    to readers, make every stream file written since the last checkpoint
///    durable (batched: see ``StreamDirectory/syncAll(dirty:)``), then the
///    catalog and the global index, and only then write the new checkpoint
///    into the journal header, which lets writers reuse that ring space.
///
/// A reader waiting for a stream asks for it to be written ahead of all this;
/// its wait ends as soon as that stream's file holds what it needs.
///
/// Everything it does is idempotent: after a crash it replays from the
/// checkpoint; stream files skip versions they already hold and the global
/// index is cut back to the checkpoint first.
final class Splitter: Sendable {
    let journal: Journal
    let split: SplitStore
    var directory: StreamDirectory { split.directory }
    var catalog: StreamCatalog { split.catalog }
    let globalIndex: GlobalIndex
    let readers: ReaderTable
    let compress: Bool
    let roundBytes: UInt64
    /// The flusher rings it when the acknowledged cursor moves; readers ring it when they wait.
    var doorbell: Doorbell { journal.writer.advanced }

    private struct Control: ~Copyable {
        var stopping = false
        var abandoning = false
        var paused = false
        var stopped = false
        var onStopped: [CheckedContinuation<Void, Never>] = []
        var failure: RingstoreError?
    }
    private let control = Mutex(Control())
    /// Events this splitter has scanned (stats).
    let splitEvents = Atomic<UInt64>(0)
    /// Syncs the stream files and moves the checkpoint, off this thread.
    let checkpointer: Checkpointer
    var checkpoints: UInt64 { checkpointer.completed.load(ordering: .relaxed) }
    /// How long stream reads waited for the splitter.
    let readerWaits = WaitRecorder()
    /// Moves segment entries into stream files in the background.
    let mover: SegmentMover
    /// Tests only: hold the scan, force a checkpoint (see ``SplitterTestControls``).
    let testing = SplitterTestControls()
    private let thread: BackgroundThread

    init(journal: Journal, split: SplitStore, globalIndex: GlobalIndex, compress: Bool,
         moverPolicy: SegmentMover.Policy) throws {
        self.journal = journal
        self.split = split
        self.globalIndex = globalIndex
        self.compress = compress
        // Small scan rounds keep the splitter quick to answer readers (requests are served between rounds).
        self.roundBytes = max(64 << 10, min(1 << 20, journal.ring.capacity / 4))
        self.readers = ReaderTable(splitPosition: journal.checkpoint)
        let bell = journal.writer.advanced
        let mover = try SegmentMover(store: split, policy: moverPolicy, owner: journal.ring.file.path.string)
        self.mover = mover
        do {
            self.checkpointer = try Checkpointer(journal: journal, split: split, globalIndex: globalIndex,
                                                 finished: { bell.ring() }, checkpointed: { mover.wake() })
        } catch {
            mover.stopAndWait()
            throw error
        }
        thread = BackgroundThread(name: "rs-splitter", owner: journal.ring.file.path.string)
        do {
            try thread.start { [self] in run() }
        } catch {
            checkpointer.abandonAndWait()
            mover.stopAndWait()
            throw error
        }
    }

    /// The cursor the splitter chases: durable, or written in relaxed mode
    /// (readers then need not wait for the flush interval; the checkpoint still
    /// never passes the durable cursor).
    var target: UInt64 { journal.writer.acknowledged }

    /// Why the checkpoint cannot move, if something failed: the splitter's last
    /// failure, reported until everything it held back is written (see `run`), or
    /// else the checkpointer's, reported until its job succeeds.
    var failure: RingstoreError? { control.withLock { $0.failure } ?? checkpointer.failure }

    /// True once the splitter's thread has finished.
    var isStopped: Bool { control.withLock { $0.stopped } }

    // MARK: - Control

    /// Stops splitting (tests use this to make readers and writers wait).
    func pause() { control.withLock { $0.paused = true } }

    func resume() {
        control.withLock { $0.paused = false }
        doorbell.ring()
    }

    /// Stops at once without splitting or checkpointing anything more, as a crash
    /// would (tests simulate crashes with it).
    func abandon() async {
        await requestStop { $0.abandoning = true }
        await checkpointer.abandon()
        await mover.stop()
        await thread.exited()
    }

    /// Splits everything acknowledged, checkpoints, and stops.
    func stop() async {
        testing.scanLimit.store(.max, ordering: .relaxed)  // a close splits everything
        await requestStop { $0.stopping = true }
        await checkpointer.stop()
        await mover.stop()
        await thread.exited()
    }

    private func requestStop(_ mark: (inout Control) -> Void) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let stopped = control.withLock { c in
                mark(&c)
                c.paused = false
                if c.stopped { return true }
                c.onStopped.append(continuation)
                return false
            }
            if stopped { continuation.resume() } else { doorbell.ring() }
        }
    }

    // MARK: - The loop

    /// Records scanned but not yet written to their stream files, by stream.
    ///
    /// Why defer: a split round covers whatever became durable since the last
    /// one, often a few kilobytes, so writing each round at once gave streams
    /// blocks of one or two events: poor compression, many index entries, and
    /// one block to decode per event when reading `$all`. Holding a stream's
    /// records (as ring positions: the records stay in the ring until the
    /// checkpoint passes them) until the checkpoint, or until the stream has a
    /// good block's worth, gives blocks that span a whole checkpoint interval.
    private struct Pending {
        /// Records before it have been scanned: each is in its stream file or in `streams`.
        var scanned: UInt64
        var streams = PendingStreams()
        /// Stream files written since the last checkpoint (the checkpoint syncs them).
        var dirty = Set<String>()
        /// Streams whose records were written (to their files or the segments)
        /// since the last checkpoint: the checkpoint releases their ring entries.
        var touched = Set<String>()
        /// Streams a reader had written ahead of the scan, with the position of the
        /// last record written: their readers' "ahead" entries must outlive any
        /// checkpoint that does not yet publish that far.
        var servedBeyondScan: [String: UInt64] = [:]
    }

    /// A stream's pending records are written as soon as they make a block this large.
    static let eagerBlockBytes = 64 << 10

    /// How much scanned journal makes a checkpoint due: a quarter of the ring,
    /// or up to half of it while many streams have records pending.
    ///
    /// Why: a checkpoint writes one block to every stream with pending records,
    /// so its cost grows with the number of those streams, not with the bytes.
    /// With one-event appends spread over 10,000 streams, a quarter of a 64 MiB
    /// ring gave blocks of about six events, and the splitter spent its time in
    /// ten thousand small writes (and index entries) per checkpoint. Waiting for
    /// about 3 KiB per pending stream, up to half the ring, makes those blocks
    /// larger; with few streams (large appends) nothing changes. Half the ring
    /// still leaves the other half for appends while the checkpoint is written
    /// — but not when the journal fills fast: at a pace that fills a quarter of
    /// the ring in under half a second, a checkpoint writing thousands of streams
    /// would take longer than the rest of the ring lasts (this filled the ring
    /// right after 10,000 streams were created at 850,000 events/s), so it starts
    /// at a quarter.
    static func checkpointBytes(capacity: UInt64, pendingStreams: Int, bytesPerSecond: Double) -> UInt64 {
        guard bytesPerSecond * 0.5 < Double(capacity / 4) else { return capacity / 4 }
        return max(capacity / 4, min(capacity / 2, UInt64(pendingStreams) * 3 << 10))
    }

    private func run() {
        var pending = Pending(scanned: readers.splitPosition.load(ordering: .acquiring))
        var lastCheckpoint = monotonicNanoseconds()
        var lastScanned = lastCheckpoint  // when the scan last found new records
        // The journal's recent pace, measured over windows of at least 100 ms.
        var paceWindow = (start: lastCheckpoint, scanned: pending.scanned)
        var bytesPerSecond = 0.0
        var consecutiveFailures = 0
        var reportingFailure = false
        while true {
            let (stopping, paused, abandoning) = control.withLock { ($0.stopping, $0.paused, $0.abandoning) }
            if abandoning {
                finish(failure: nil)
                return
            }
            do {
                if paused {
                    doorbell.wait(timeoutNanoseconds: 5_000_000) { true }
                    continue
                }
                var worked = try scan(&pending)
                if worked {
                    lastScanned = monotonicNanoseconds()
                    let window = lastScanned - paceWindow.start
                    if window >= 100_000_000 {
                        bytesPerSecond = Double(pending.scanned - paceWindow.scanned) * 1e9 / Double(window)
                        paceWindow = (lastScanned, pending.scanned)
                    }
                } else if monotonicNanoseconds() - paceWindow.start >= 1_000_000_000 {
                    bytesPerSecond = 0  // idle: the pace is what comes next
                    paceWindow = (monotonicNanoseconds(), pending.scanned)
                }
                worked = try serveRequests(&pending) || worked
                let (reserved, checkpoint) = journal.spaceInUse
                let capacity = journal.ring.capacity
                let caughtUp = pending.scanned >= target
                let busy = checkpointer.isBusy
                if stopping, busy, let failure = checkpointer.failure {
                    finish(failure: failure)  // the final checkpoint cannot be written
                    return
                }
                let now = monotonicNanoseconds()
                let forced = testing.checkpointWanted(scanned: pending.scanned, checkpoint: checkpoint)
                let due = !busy && pending.scanned > checkpoint && (
                    pending.scanned - checkpoint >= Self.checkpointBytes(capacity: capacity, pendingStreams: pending.streams.count,
                                                                         bytesPerSecond: bytesPerSecond)
                        || reserved - checkpoint >= capacity / 2
                        || now - lastScanned >= 1_000_000_000  // quiet for a second
                        || now - lastCheckpoint >= 10_000_000_000
                        || (stopping && caughtUp)
                        || forced)
                if busy && !worked && reserved - checkpoint >= capacity / 2 && !pending.streams.isEmpty {
                    // Writers are short of space and the checkpoint in progress is still
                    // syncing: write what is pending now, so the next checkpoint can
                    // follow at once (smaller blocks, but the ring frees up sooner).
                    try writePending(&pending)
                    worked = true
                }
                if due {
                    try writeCheckpoint(&pending)
                    lastCheckpoint = monotonicNanoseconds()
                    worked = true
                }
                consecutiveFailures = 0
                // A failure stays reported until every record held back is in its file:
                // until then it still explains why the checkpoint (and so the ring) is
                // stuck. Cleared after any pass that threw nothing, it flickered while
                // the disk was full (a scan or a small write succeeds between failed
                // stream writes), and a journal-full error raised then named no cause.
                if reportingFailure && pending.streams.isEmpty {
                    reportingFailure = false
                    control.withLock { $0.failure = nil }  // recovered: a past failure no longer explains anything
                }
                if stopping && caughtUp && !checkpointer.isBusy && journal.writer.isStopped
                    && pending.scanned == journal.checkpoint {
                    finish(failure: nil)
                    return
                }
                if !worked {
                    let idleTimeout: Int64 = stopping ? 1_000_000 : 100_000_000
                    doorbell.wait(timeoutNanoseconds: idleTimeout) { pending.scanned >= testing.scanEnd(target) && !readers.hasRequests.load(ordering: .acquiring) }
                }
            } catch {
                let failure = (error as? RingstoreError) ?? RingstoreError(.ioError, "splitter failed: \(error)")
                // Out of descriptors (something else in the process uses many): close
                // half the cached stream files before retrying.
                if failure.isOutOfDescriptors { directory.shed() }
                // Nothing is lost: the checkpoint has not moved past anything unsplit, and
                // `pending` keeps every record and file not yet checkpointed. Retry the same work with
                // backoff (10 ms doubling to 1 s; a full disk may clear); stop if asked to.
                control.withLock { $0.failure = failure }
                reportingFailure = true
                if stopping {
                    finish(failure: failure)
                    return
                }
                consecutiveFailures += 1
                let until = monotonicNanoseconds() + min(1_000_000_000, 10_000_000 << Int64(min(consecutiveFailures - 1, 7)))
                while case let now = monotonicNanoseconds(), now < until,
                      !control.withLock({ $0.stopping || $0.abandoning }) {
                    doorbell.wait(timeoutNanoseconds: until - now) { true }
                }
            }
        }
    }

    private func finish(failure: RingstoreError?) {
        let waiters = control.withLock { c in
            c.stopped = true
            if let failure { c.failure = failure }
            defer { c.onStopped.removeAll() }
            return c.onStopped
        }
        for waiter in waiters { waiter.resume() }
        testing.resumeAll()
    }

    /// Scans the journal from the scan cursor towards the acknowledged cursor (up
    /// to `roundBytes`): files each event record under its stream, appends the
    /// global-index entries (one write), and writes the streams that now have a
    /// block's worth. Returns whether anything was scanned.
    private func scan(_ pending: inout Pending) throws -> Bool {
        let start = pending.scanned
        let end = testing.scanEnd(target)
        guard start < end else { return false }
        let ring = journal.ring
        var position = start
        // Nothing is filed under `pending` until the round's global-index entries are
        // written: a round that fails is scanned again whole, and must not file its
        // records twice.
        var records: [(position: UInt64, version: UInt64, size: Int)] = []
        // Records come in runs of one stream (an append's events are contiguous): a
        // run's name is decoded, and its catalog number looked up, once, not per
        // record; a record joins the run when its name has the run's bytes.
        var runNames: [String] = []
        var runEnds: [Int] = []
        while position < end && position - start < roundBytes {
            let toEnd = ring.bytesToEnd(from: position)
            if toEnd < UInt64(JournalRecord.paddingSize) {
                position += toEnd
                continue
            }
            let here = position
            let length = try ring.withMappedBytes(physical: ring.physical(position), count: Int(toEnd)) { bytes throws(RingstoreError) -> UInt64? in
                switch JournalRecord.inspect(bytes, expectedPosition: here) {
                case .event(let header):
                    if let name = runNames.last, JournalRecord.streamName(bytes, header, is: name) {
                        runEnds[runEnds.count - 1] += 1
                    } else {
                        runNames.append(JournalRecord.streamName(bytes, header))
                        runEnds.append(records.count + 1)
                    }
                    let size = StreamBlock.entryHeaderSize + header.typeCount + header.metadataCount + header.dataCount
                    records.append((header.position, header.version, size))
                    return UInt64(header.length)
                case .padding:
                    return nil  // padding fills the rest of the lap
                case .invalid(let reason):
                    throw damagedRecord(at: here, reason)
                }
            }
            position += length ?? toEnd
        }
        // Catalog numbers once per run, and one write for the global index.
        let streams = catalogued(runNames)
        var indexEntries: [GlobalIndex.Entry] = []
        indexEntries.reserveCapacity(records.count)
        var runStart = 0
        for (stream, runEnd) in zip(streams, runEnds) {
            for record in records[runStart..<runEnd] {
                indexEntries.append(.init(position: record.position, version: record.version, stream: stream.number))
            }
            runStart = runEnd
        }
        try catalog.write()
        try globalIndex.append(indexEntries)
        var full: [UInt32] = []
        runStart = 0
        for (stream, runEnd) in zip(streams, runEnds) {
            // Filed under the shared copy of the name (see `catalogued`): the pending
            // table, the dirty set and the open-file cache's memo then hold no copy of their own.
            let run = records[runStart..<runEnd]
            if pending.streams.add(number: stream.number, name: stream.name, positions: run.lazy.map(\.position),
                                   rawBytes: run.reduce(0) { $0 + $1.size }, fullBytes: Self.eagerBlockBytes) {
                full.append(stream.number)
            }
            runStart = runEnd
        }
        pending.scanned = position
        splitEvents.add(UInt64(records.count), ordering: .relaxed)
        for stream in full { try write(stream, &pending) }
        return true
    }

    /// The catalog number of each stream in `names` (registering new ones, in
    /// order of first appearance) and the copy of its name to keep, in the order
    /// of `names`.
    ///
    /// Why the copy matters: a name longer than 15 bytes is a heap object of its
    /// own, and a name decoded from the journal is a new one each time, so each
    /// table keyed by stream would otherwise hold its own copy (80 bytes and more
    /// each, at 100,000 streams megabytes). The catalog keeps one copy per stream,
    /// the writer's index key (which exists, since the record was appended): a
    /// new stream's is registered with it, and a name read from the catalog file
    /// at open is replaced by it the first time the stream is split again. A copy
    /// is shared only if its bytes are identical, since a name's bytes choose its file.
    ///
    /// A stream registered and shared already (every stream after its first split
    /// this session) costs one catalog lookup; only the others go through the
    /// writer's lock, once per round.
    private func catalogued(_ names: [String]) -> [(number: UInt32, name: String)] {
        var result: [(number: UInt32, name: String)] = []
        result.reserveCapacity(names.count)
        var slow: [Int] = []
        for (i, name) in names.enumerated() {
            if let known = catalog.entry(of: name), !known.shareable, known.name.hasSameUTF8(as: name) {
                result.append((known.number, known.name))
            } else {
                result.append((0, name))  // numbered below
                slow.append(i)
            }
        }
        guard !slow.isEmpty else { return result }
        var first: [String: Int] = [:]  // where each of these names first appears
        var new: [String] = []
        var loaded: [(number: UInt32, name: String)] = []
        for i in slow where first[names[i]] == nil {
            let name = names[i]
            first[name] = i
            if let known = catalog.entry(of: name), known.name.hasSameUTF8(as: name) {
                result[i] = (known.number, known.name)
                loaded.append((known.number, known.name))  // read from the file: shareable
            } else {
                new.append(name)
            }
        }
        // Once per new stream, and once per stream read from the catalog file: not a
        // lock taken on every round.
        let keys = journal.sharedNames(of: new + loaded.map(\.name))
        let newKeys = zip(new, keys).map { name, key in key ?? name }
        let loadedKeys = Array(keys[new.count...])
        var resolved: [String: (number: UInt32, name: String)] = [:]
        for name in newKeys { resolved[name] = (catalog.register(name), name) }
        for (entry, key) in zip(loaded, loadedKeys) {
            catalog.share(key ?? entry.name, as: entry.number)  // marks it done even without a key
            if let key { resolved[key] = (entry.number, key) }
        }
        for i in slow { result[i] = resolved[names[i]] ?? result[first[names[i]]!] }
        return result
    }

    private func damagedRecord(at position: UInt64, _ reason: String) -> RingstoreError {
        let physical = journal.ring.physical(position)
        return RingstoreError(.corruptData, "journal record at position \(position), below the acknowledged cursor, is damaged: \(reason)",
                              path: journal.ring.file.path.string, offset: RingFile.headerAreaSize + physical)
    }

    /// Writes `stream`'s pending records with one write: into its own file, or,
    /// if the stream has entries in the split segments, as one more entry there
    /// (moving its whole chain with them could copy megabytes at once; the mover
    /// moves chains that have a block's worth on its own schedule).
    private func write(_ number: UInt32, _ pending: inout Pending) throws {
        // Forgotten only once written: after a failed write the next attempt starts over.
        guard let entry = pending.streams[number], let last = entry.positions.last else { return }
        let stream = entry.name
        try makeJournalDurable(through: last)
        let blocks = try buildBlocks(entry.positions, of: stream, from: try split.splitNext(of: stream, number: entry.number))
        if split.segments.head(of: entry.number) != nil {
            try checkSegmentRoom()
            try split.appendToSegments([.init(number: entry.number, blocks: blocks)])
        } else {
            try split.writeToFile(stream: stream, number: entry.number, blocks: blocks)
            pending.dirty.insert(stream)
        }
        pending.streams.remove(number)
        pending.touched.insert(stream)
    }

    /// Keeps the split segments bounded. While the mover cannot empty them (a
    /// stream file it must write cannot grow: the disk is full, a file-size
    /// limit) and they hold over twice their budget, nothing more goes into
    /// them: the splitter fails with the mover's error and retries, the ring
    /// fills, and appends wait and then fail naming the cause, as they do when
    /// the stream files themselves cannot be written. Without this the segments
    /// grew without bound and the cause stayed hidden.
    private func checkSegmentRoom() throws {
        guard let failure = mover.failure else { return }
        let total = split.segments.segmentSizes().reduce(UInt64(0)) { $0 + $1.bytes }
        guard total > 2 * mover.policy.budgetBytes else { return }
        throw RingstoreError(failure.code,
                             "the split segments hold \(total) bytes, over twice their budget, and cannot be moved into stream files: \(failure.message)",
                             stream: failure.stream, path: failure.path, offset: failure.offset, cause: failure)
    }

    /// Makes the journal durable through the record at `position` before any of
    /// it goes into a stream file.
    ///
    /// Why: in relaxed mode the splitter (for readers, and in its main pass)
    /// follows the written cursor, ahead of the durable one. A stream file must
    /// never hold a record the journal does not durably hold — not even in the
    /// page cache, since the kernel writes pages back in no promised order and
    /// the checkpoint syncs the file: after a power cut the journal would lack
    /// event X at version v while the file held it, the next append would be
    /// given v again, and the file would shadow it. One sync covers everything
    /// written so far, so this costs at most one flush per batch of appends (and
    /// nothing in durable mode, where the splitter only sees durable records).
    private func makeJournalDurable(through position: UInt64) throws {
        try journal.writer.syncNow(upTo: position + 1)
    }

    /// The blocks for records at `positions` (one stream's, in order) from version
    /// `next` on, copied from the ring.
    ///
    /// Records of versions the split storage already holds (a replay after a
    /// crash, or a reader's request that wrote them ahead) are skipped — but only
    /// once the stored events are seen to be exactly those (same ID and journal
    /// position): a stream file or segment holding another event at such a
    /// version is ahead of the journal, and skipping would hide the journal's
    /// event behind it for good.
    private func buildBlocks(_ positions: [UInt64], of stream: String, from next: UInt64) throws -> [StreamBlock.RawBlock] {
        var blocks: [StreamBlock.RawBlock] = []
        var current = StreamBlock.RawBlock()
        let ring = journal.ring
        var expected = next
        var skipped: [(version: UInt64, id: UUID, position: UInt64)] = []
        for position in positions {
            let physical = ring.physical(position)
            try ring.withMappedBytes(physical: physical, count: Int(ring.bytesToEnd(from: position))) { bytes in
                // Checksummed when scanned; below checkpoint + capacity nothing writes over it.
                guard case .event(let h) = JournalRecord.inspect(bytes, expectedPosition: position, verifyChecksum: false) else {
                    throw damagedRecord(at: position, "it changed after it was scanned")
                }
                guard h.version >= expected else {  // already in the file, to be checked below
                    skipped.append((h.version, h.id, h.position))
                    return
                }
                guard h.version == expected else {
                    throw RingstoreError(.corruptData, "stream \"\(JournalRecord.streamName(bytes, h))\": the journal record at position \(position) has version \(h.version) where \(expected) was expected next",
                                         path: ring.file.path.string, offset: RingFile.headerAreaSize + physical)
                }
                expected += 1
                let size = StreamBlock.entryHeaderSize + h.typeCount + h.metadataCount + h.dataCount
                if current.count > 0 && current.raw.count + size > StreamBlock.maxRawLength {
                    blocks.append(current)
                    current = StreamBlock.RawBlock()
                }
                if current.count == 0 { current.raw.reserveCapacity(min(StreamBlock.maxRawLength, size * positions.count)) }
                let typeStart = JournalRecord.eventHeaderSize + h.streamCount
                let metadataStart = typeStart + h.typeCount
                let dataStart = metadataStart + h.metadataCount
                current.add(version: h.version, position: h.position, id: h.id, timestampNanoseconds: h.timestampNanoseconds,
                            json: h.json,
                            type: UnsafeRawBufferPointer(rebasing: bytes[typeStart..<metadataStart]),
                            metadata: UnsafeRawBufferPointer(rebasing: bytes[metadataStart..<dataStart]),
                            data: UnsafeRawBufferPointer(rebasing: bytes[dataStart..<(dataStart + h.dataCount)]))
            }
        }
        if current.count > 0 { blocks.append(current) }
        if let first = skipped.first {
            let stored = try split.read(stream: stream, from: first.version, direction: .forwards, maxCount: skipped.count)
            for record in skipped {
                let held = stored.first { $0.version == record.version }
                guard let held, held.id == record.id, held.position == record.position else {
                    let what = held.map { "event \($0.id) (journal position \($0.position))" } ?? "no event"
                    throw RingstoreError(.corruptData,
                                         "stream \"\(stream)\": its split storage holds \(what) at version \(record.version), but the journal holds event \(record.id) there (position \(record.position)): the stored events are ahead of the journal",
                                         stream: stream)
                }
            }
        }
        return blocks
    }

    /// Writes at once the streams readers are waiting for: their pending records
    /// and those not scanned yet, up to the acknowledged cursor, as one entry
    /// each in the split segments (a small sequential write, not one into the
    /// stream's file).
    private func serveRequests(_ pending: inout Pending) throws -> Bool {
        guard readers.hasRequests.load(ordering: .acquiring) else { return false }
        let requested = readers.takeRequests()
        let end = target
        var worked = false
        var items: [SplitStore.Item] = []
        var served: [(stream: String, number: UInt32, next: UInt64, lastUnscanned: UInt64?)] = []
        for stream in requested {
            let unscanned = pending.scanned < end ? journal.positions(of: stream, in: pending.scanned..<end) : []
            let waiting = catalog.number(of: stream).flatMap { pending.streams[$0] }
            let positions = (waiting?.positions ?? []) + unscanned
            guard let last = positions.last else {
                // Already written (into its file or the segments) but not yet published
                // by a checkpoint: tell the reader what is stored.
                let next = try split.nextVersion(of: stream)
                if next > 0 { readers.recordAhead(stream, nextVersion: next) }
                continue
            }
            try makeJournalDurable(through: last)
            let number = waiting?.number ?? catalog.register(stream)
            let blocks = try buildBlocks(positions, of: stream, from: try split.splitNext(of: stream, number: number))
            let next = try blocks.last.map { $0.firstVersion + UInt64($0.count) } ?? split.nextVersion(of: stream)
            if !blocks.isEmpty { items.append(.init(number: number, blocks: blocks)) }
            served.append((stream, number, next, unscanned.last))
        }
        guard !served.isEmpty else { return false }
        try catalog.write()  // a stream seen first here: its number is named before the checkpoint syncs both
        try checkSegmentRoom()
        try split.appendToSegments(items)
        for (stream, number, next, lastUnscanned) in served {
            pending.streams.remove(number)
            pending.touched.insert(stream)
            if let last = lastUnscanned { pending.servedBeyondScan[stream] = max(last, pending.servedBeyondScan[stream] ?? 0) }
            readers.recordAhead(stream, nextVersion: next)
            worked = true
        }
        return worked
    }

    /// Raw bytes pending from which on a stream's records go to its own file at
    /// a checkpoint rather than to the split segments (unless it has entries there).
    static let directBlockBytes = 16 << 10
    /// Streams written to their own files at one checkpoint at most (the
    /// largest first): each costs a random write and its metadata.
    static let maxDirectWrites = 256
    /// Raw bytes of blocks built for one segment write (bounds the memory a
    /// checkpoint over thousands of streams holds at once).
    static let segmentWriteBytes = 4 << 20

    /// Writes every stream's pending records: the few streams with a good
    /// block's worth into their own files, all others into the split segments
    /// (sequential writes of up to ``segmentWriteBytes``).
    private func writePending(_ pending: inout Pending) throws {
        if pending.scanned > 0 { try makeJournalDurable(through: pending.scanned - 1) }
        let direct = pending.streams.list.filter { $0.rawBytes >= Self.directBlockBytes && split.segments.head(of: $0.number) == nil }
            .sorted { $0.rawBytes > $1.rawBytes }.prefix(Self.maxDirectWrites).map(\.number)
        for stream in direct {
            // A reader waiting for its stream should not wait for the whole flush.
            if readers.hasRequests.load(ordering: .acquiring) { _ = try serveRequests(&pending) }
            try write(stream, &pending)
        }
        var items: [SplitStore.Item] = []
        var written: [(number: UInt32, name: String)] = []
        var bytes = 0
        func flush(_ pending: inout Pending) throws {
            if !items.isEmpty { try checkSegmentRoom() }
            try split.appendToSegments(items)
            for (number, name) in written {
                pending.streams.remove(number)
                pending.touched.insert(name)
            }
            items.removeAll()
            written.removeAll()
            bytes = 0
        }
        // Over the streams pending when the pass starts: one a reader's request wrote
        // meanwhile finds nothing left to write (its versions are stored) and is only forgotten.
        for entry in pending.streams.list where !entry.positions.isEmpty {
            let blocks = try buildBlocks(entry.positions, of: entry.name, from: try split.splitNext(of: entry.name, number: entry.number))
            if !blocks.isEmpty { items.append(.init(number: entry.number, blocks: blocks)) }
            written.append((entry.number, entry.name))
            bytes += entry.rawBytes
            if bytes >= Self.segmentWriteBytes {
                try flush(&pending)
                if readers.hasRequests.load(ordering: .acquiring) { _ = try serveRequests(&pending) }
            }
        }
        try flush(&pending)
    }

    /// Writes every pending record, publishes the new split cursor to readers,
    /// and hands the checkpoint to the ``Checkpointer``, which makes the stream
    /// files durable and then moves the journal's checkpoint there.
    private func writeCheckpoint(_ pending: inout Pending) throws {
        try writePending(&pending)
        let split = pending.scanned
        let previousSplit = readers.splitPosition.load(ordering: .acquiring)
        readers.splitPosition.store(split, ordering: .releasing)
        // Every record before `split` is in its stream file or a segment now: this process no
        // longer needs those ring pages mapped (readers of split events go to the
        // files). Dropped here rather than at the checkpoint, which follows only
        // once the files are synced (a `syncfs` over thousands of files can take
        // seconds), so the ring's resident part is the unsplit part. The pages stay
        // in the page cache; an occasional read maps them again.
        journal.ring.releasePages(from: previousSplit, to: split)
        // A stream written ahead past `split` keeps its entry: forgetting it would
        // leave its reader waiting for the next checkpoint (it did, up to a second).
        readers.forgetAhead(pending.touched.filter { (pending.servedBeyondScan[$0] ?? 0) < split })
        pending.servedBeyondScan = pending.servedBeyondScan.filter { $0.value >= split }
        checkpointer.submit(.init(split: split, dirty: pending.dirty, touched: pending.touched,
                                  segmentBoundary: self.split.segments.end))
        // Not `removeAll(keepingCapacity:)`: the job shares this storage, so keeping
        // the capacity would allocate a second set as large while the job runs.
        pending.dirty = []
        pending.touched = []
    }
}
