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
/// 1. **Split round** (on the splitter thread): scan the journal from the split
///    cursor towards the acknowledged cursor (up to `roundBytes`), group the
///    events by stream, append each stream's events to its file with one write,
///    append their global-index entries with one write, then publish the new
///    split cursor to readers.
/// 2. **Checkpoint round** (when a quarter of the ring is split but not yet
///    checkpointed, when writers are short of space, every second while there
///    is anything to checkpoint, and on close): make every stream file written
///    since the last checkpoint durable (batched: see
///    ``StreamDirectory/syncAll(dirty:)``), then the catalog and the global
///    index, and only then write the new checkpoint into the journal header,
///    which lets writers reuse that ring space.
///
/// Everything it does is idempotent: after a crash it replays from the
/// checkpoint; stream files skip versions they already hold and the global
/// index is cut back to the checkpoint first. A reader waiting for a stream
/// asks for it to be split ahead of the main pass.
final class Splitter: Sendable {
    let journal: Journal
    let directory: StreamDirectory
    let catalog: StreamCatalog
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
    /// Bytes of journal this splitter has copied (stats).
    let splitEvents = Atomic<UInt64>(0)
    let checkpoints = Atomic<UInt64>(0)
    /// How long stream reads waited for the splitter.
    let readerWaits = WaitRecorder()

    init(journal: Journal, directory: StreamDirectory, catalog: StreamCatalog, globalIndex: GlobalIndex,
         compress: Bool) {
        self.journal = journal
        self.directory = directory
        self.catalog = catalog
        self.globalIndex = globalIndex
        self.compress = compress
        self.roundBytes = max(64 << 10, journal.ring.capacity / 4)
        let checkpoint = journal.writer.state.withLock { $0.checkpoint }
        self.readers = ReaderTable(splitPosition: checkpoint)
        BackgroundThread.start { [self] in run() }
    }

    /// The cursor the splitter chases: durable, or written in relaxed mode
    /// (readers then need not wait for the flush interval; the checkpoint still
    /// never passes the durable cursor).
    var target: UInt64 { journal.writer.acknowledged }

    var failure: RingstoreError? { control.withLock { $0.failure } }

    // MARK: - Control

    /// Stops splitting (tests use this to make readers and writers wait).
    func pause() { control.withLock { $0.paused = true } }

    func resume() {
        control.withLock { $0.paused = false }
        doorbell.ring()
    }

    /// Stops at once without splitting or checkpointing anything more, as a crash
    /// would (tests simulate crashes with it).
    func abandon() async { await requestStop { $0.abandoning = true } }

    /// Splits everything acknowledged, checkpoints, and stops.
    func stop() async { await requestStop { $0.stopping = true } }

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

    private func run() {
        var dirty = Set<String>()
        var lastCheckpoint = monotonicNanoseconds()
        var consecutiveFailures = 0
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
                var worked = try splitRequestedStreams(into: &dirty)
                worked = try splitRound(into: &dirty) || worked
                let split = readers.splitPosition.load(ordering: .acquiring)
                let (checkpoint, reserved) = journal.writer.state.withLock { ($0.checkpoint, $0.reserved) }
                let capacity = journal.ring.capacity
                let caughtUp = split >= target
                let due = split > checkpoint && (
                    split - checkpoint >= capacity / 4
                        || reserved - checkpoint >= capacity / 2
                        || monotonicNanoseconds() - lastCheckpoint >= 1_000_000_000
                        || (stopping && caughtUp))
                if due {
                    try writeCheckpoint(at: split, dirty: dirty)
                    dirty.removeAll(keepingCapacity: true)
                    lastCheckpoint = monotonicNanoseconds()
                    worked = true
                }
                if consecutiveFailures > 0 {
                    consecutiveFailures = 0
                    control.withLock { $0.failure = nil }  // recovered: a past failure no longer explains anything
                }
                if stopping && caughtUp && journal.writer.isStopped && split == journal.writer.state.withLock({ $0.checkpoint }) {
                    finish(failure: nil)
                    return
                }
                if !worked {
                    doorbell.wait(timeoutNanoseconds: 100_000_000) { readers.splitPosition.load(ordering: .acquiring) >= target }
                }
            } catch {
                let failure = (error as? RingstoreError) ?? RingstoreError(.ioError, "splitter failed: \(error)")
                // Nothing is lost: the checkpoint has not moved past anything unsplit, and
                // `dirty` keeps every file written since it. Retry the same work with
                // backoff (10 ms doubling to 1 s; a full disk may clear); stop if asked to.
                control.withLock { $0.failure = failure }
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
    }

    /// An event record found in the ring during a split round: where it is and its fixed fields.
    private struct FoundRecord {
        var physical: UInt64
        var header: JournalRecord.EventHeader
    }

    /// One pass over the journal from the split cursor: returns whether anything was split.
    ///
    /// Records are transcoded straight from the mapped ring into each stream's
    /// block (no object per event), streams get their catalog numbers once per
    /// round, and each stream's file gets one write.
    private func splitRound(into dirty: inout Set<String>) throws -> Bool {
        let start = readers.splitPosition.load(ordering: .acquiring)
        let end = target
        guard start < end else { return false }
        let ring = journal.ring
        var position = start
        var order: [String] = []
        var groupOf: [String: Int] = [:]
        var groups: [[FoundRecord]] = []
        var entries: [(position: UInt64, version: UInt64, group: Int)] = []
        while position < end && position - start < roundBytes {
            let toEnd = ring.bytesToEnd(from: position)
            if toEnd < UInt64(JournalRecord.paddingSize) {
                position += toEnd
                continue
            }
            let physical = ring.physical(position)
            let here = position
            let step: Result<(String, JournalRecord.EventHeader)?, RingstoreError> = ring.withMappedBytes(physical: physical, count: Int(toEnd)) { bytes in
                switch JournalRecord.inspect(bytes, expectedPosition: here) {
                case .event(let header): return .success((JournalRecord.streamName(bytes, header), header))
                case .padding: return .success(nil)
                case .invalid(let reason):
                    return .failure(RingstoreError(.corruptData, "journal record at position \(here), below the acknowledged cursor, is damaged: \(reason)",
                                                   path: ring.file.path.string, offset: RingFile.headerAreaSize + physical))
                }
            }
            if let (stream, header) = try step.get() {
                let group: Int
                if let existing = groupOf[stream] {
                    group = existing
                } else {
                    group = groups.count
                    groupOf[stream] = group
                    order.append(stream)
                    groups.append([])
                }
                groups[group].append(FoundRecord(physical: physical, header: header))
                entries.append((header.position, header.version, group))
                position += UInt64(header.length)
            } else {
                position += toEnd  // padding fills the rest of the lap
            }
        }
        for (group, stream) in order.enumerated() {
            // A reader waiting for its stream should not wait for the whole round.
            if readers.hasRequests.load(ordering: .acquiring) { _ = try splitRequestedStreams(into: &dirty) }
            guard let handle = try directory.handle(for: stream, create: true) else { continue }
            try handle.withFile { file in
                try file.append(blocks: buildBlocks(groups[group], from: file.nextVersion), compress: compress)
            }
            dirty.insert(stream)
        }
        let numbers = order.map { catalog.register($0) }
        try catalog.write()
        try globalIndex.append(entries.map { .init(position: $0.position, version: $0.version, stream: numbers[$0.group]) })
        readers.splitPosition.store(position, ordering: .releasing)
        readers.forgetAhead(order)
        splitEvents.add(UInt64(entries.count), ordering: .relaxed)
        return true
    }

    /// The blocks for a stream's records from version `next` on (earlier ones are
    /// already in its file: a replay after a crash), copied from the ring.
    private func buildBlocks(_ records: [FoundRecord], from next: UInt64) -> [StreamBlock.RawBlock] {
        var blocks: [StreamBlock.RawBlock] = []
        var current = StreamBlock.RawBlock()
        for record in records where record.header.version >= next {
            let h = record.header
            let size = StreamBlock.entryHeaderSize + h.typeCount + h.metadataCount + h.dataCount
            if current.count > 0 && current.raw.count + size > StreamBlock.maxRawLength {
                blocks.append(current)
                current = StreamBlock.RawBlock()
            }
            if current.count == 0 { current.raw.reserveCapacity(min(StreamBlock.maxRawLength, size * records.count)) }
            journal.ring.withMappedBytes(physical: record.physical, count: h.length) { bytes in
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
        return blocks
    }

    /// Splits ahead of the main pass the streams readers are waiting for.
    private func splitRequestedStreams(into dirty: inout Set<String>) throws -> Bool {
        let requested = readers.takeRequests()
        guard !requested.isEmpty else { return false }
        let split = readers.splitPosition.load(ordering: .acquiring)
        let end = target
        var worked = false
        for stream in requested {
            let positions: [UInt64] = journal.writer.state.withLock { s in
                guard let state = s.index.streams[stream] else { return [] }
                return state.positions.filter { $0 >= split && $0 < end }
            }
            guard !positions.isEmpty, let handle = try directory.handle(for: stream, create: true) else { continue }
            let events = try positions.map { try journal.readEvent(at: $0) }
            try handle.withFile { try $0.append(events, compress: compress) }
            dirty.insert(stream)
            readers.recordAhead(stream, nextVersion: events.last!.version + 1)
            worked = true
        }
        return worked
    }

    /// Makes everything split so far durable, then moves the journal's checkpoint to `split`.
    private func writeCheckpoint(at split: UInt64, dirty: Set<String>) throws {
        // The checkpoint never passes the durable cursor (relaxed mode may split past it).
        try journal.writer.syncNow(upTo: split)
        try directory.syncAll(dirty: dirty)
        try catalog.sync()
        try globalIndex.sync()
        try journal.advanceCheckpoint(to: split, streams: dirty)
        checkpoints.add(1, ordering: .relaxed)
    }
}
