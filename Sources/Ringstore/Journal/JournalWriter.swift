#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Dispatch
import Synchronization

/// Appends records to the ring journal with group commit.
///
/// The path of an append:
/// 1. `append` takes the writer lock once: checks the expected version,
///    reserves ring space (waiting, outside the lock, while the ring is full),
///    assigns versions and positions, encodes every record into the staging
///    buffer, and registers its continuation. One lock section per append,
///    whatever its number of events.
/// 2. The flusher thread swaps the staging buffer out, writes it with `pwrite`
///    (one call per contiguous segment) and, in durable mode, `fdatasync`s. It
///    syncs at once when nothing more is queued; while appends keep arriving it
///    keeps writing and syncs when the oldest unsynced write is `maxFlushDelay`
///    old, so one flush covers many appends.
/// 3. After the flush (durable) or the write (relaxed), the flusher resumes every
///    append its cursor now covers. Records are always copied before the flush
///    that acknowledges them starts.
///
/// A failed write or flush does not stop the store. The appends that the
/// failed attempt covered get an ``RingstoreError/Code/ioError`` saying their
/// outcome is unknown (their records stay in the ring and become durable once a
/// flush succeeds, so a retry with the same event IDs is recognised as a
/// duplicate); the flusher then retries with backoff (5 ms doubling to 0.5 s).
/// Because a failed `fdatasync` on Linux may have marked the dirty pages clean
/// without writing them, the next sync never trusts the page cache: ``RingSync``,
/// through which every sync of the ring goes (header writes included), first
/// writes the whole unflushed range again (copied from the mapping, each
/// record's checksum and position verified) and only then flushes. Appends
/// staged meanwhile wait for the next attempt. Only if the unflushed records can
/// no longer be read back intact, or a flush fails while the store is closing,
/// is the writer poisoned: every later append fails with
/// ``RingstoreError/Code/storeFailed`` until the store is reopened.
///
/// The flusher sleeps in one place only (``sleepIfIdle(_:)``): it marks itself
/// idle, under the writer lock, only after finding nothing staged, and an
/// append that finds it idle wakes it. Every other wait (the backoff after a
/// failure) has a timeout.
final class JournalWriter: Sendable {
    enum Mode: Sendable {
        case durable(maxFlushDelayNanoseconds: Int64)
        case relaxed(flushIntervalNanoseconds: Int64)
    }

    /// An append waiting for the cursor to pass its last record.
    struct Waiter: Sendable {
        var lastPosition: UInt64
        var result: AppendResult
        var continuation: UnsafeContinuation<Outcome, any Error>
    }

    enum Outcome: Sendable {
        case appended(AppendResult)
        case journalFull(needed: Int)
        /// The stream is not in the index yet: its version must be loaded from its file first.
        case unknownStream
        /// A retry of an append whose first events have left the ring: compare their IDs with the stream file's.
        case retryOfStored(StoredRetry)
    }

    /// A possible retry of an append whose first events have left the ring
    /// (all of them, or those before a checkpoint that fell inside it): its
    /// events still in the ring were compared under the writer's lock and
    /// matched; those before ``ringFirstVersion`` are compared with the stream
    /// file, which holds every version that has left the ring.
    struct StoredRetry: Sendable {
        var firstVersion: UInt64
        /// The first version of the append compared in the ring (one past its last if none was).
        var ringFirstVersion: UInt64
        /// The append's last event's position, if that event is in the ring.
        var lastPositionInRing: UInt64?
        /// What to throw if the stream file's IDs differ: the append is then no retry.
        var otherwise: RingstoreError
    }

    struct State: ~Copyable {
        var staging = StagingBuffer()
        var spare = StagingBuffer()
        var waiters: [Waiter] = []
        var index: JournalIndex
        var window: IdempotencyWindow
        /// End of the space handed out to appends (≥ written ≥ durable).
        var reserved: UInt64
        var checkpoint: UInt64
        var flusherIdle = false
        /// False while the flusher gathers a batch (see ``GroupCommitPolicy``): the
        /// appends staged meanwhile wait for its deadline rather than wake it.
        var flusherWokenByAppends = true
        var closing = false
        var stopped = false
        var failure: RingstoreError?
        var onStopped: [CheckedContinuation<Void, Never>] = []
    }

    let ring: RingFile
    let epoch: UInt32
    let mode: Mode
    /// How long an append waits for ring space (`journalFullWait`). Atomic so that
    /// tests can shorten it once the condition they test has set in (see
    /// `EventStore.setJournalFullWait`); an append already waiting uses the new
    /// value from its next look at the ring.
    let journalFullWaitNanoseconds: Atomic<Int64>
    let state: Mutex<State>
    private let wake = DispatchSemaphore(value: 0)

    /// Every sync of the ring, and the written and durable cursors (see ``RingSync``).
    let ringSync: RingSync
    /// Records `pwrite`n into the ring (the page cache) end here.
    var written: UInt64 { ringSync.written.load(ordering: .acquiring) }
    /// Records flushed to stable storage end here.
    var durable: UInt64 { ringSync.durable.load(ordering: .acquiring) }
    /// The ring's flushes made for appends and checkpoints (not the open's or header writes') (stats).
    let flushCount = Atomic<UInt64>(0)
    /// Times the flusher let a batch gather after a device stall (see ``GroupCommitPolicy``).
    let gatheredBatches = Atomic<UInt64>(0)
    let acknowledger: Acknowledger
    private let flusherThread: BackgroundThread
    /// Rung (on the flusher thread) each time the acknowledged cursor has moved
    /// ``splitterWakeBytes`` since the last ring: the splitter waits on it.
    let advanced = Doorbell()
    /// How far the acknowledged cursor moves between two rings of ``advanced``:
    /// a 64th of the ring, between 4 KiB and 256 KiB.
    ///
    /// Why not at every move: the splitter sleeps whenever it has caught up, so
    /// ringing after every flush woke it after every flush (1,800 times a second
    /// at 77,000 one-event appends a second) to scan a few kilobytes, each wake a
    /// futex call on the flusher and two context switches. Nothing waits on
    /// those scans: a stream reader asks the splitter itself (and rings), `$all`
    /// and subscriptions read the ring, and a checkpoint's triggers tolerate a
    /// scan a few hundred kilobytes behind. What is acknowledged after the last
    /// ring is scanned when the splitter's idle wait times out (100 ms).
    let splitterWakeBytes: UInt64
    /// The stream files, for streams whose records have left the ring.
    let stored: any StoredStreams
    /// Tells whether a stream not yet in the index was hard-deleted (the store installs it at open).
    let deletions = DeletionLookup()
    /// Times each flush (the store installs a metrics timer at open).
    let flushObserver = FlushObserver()
    /// Appends that had to wait for ring space (sampled for logs and metrics).
    let journalFullWaits = Atomic<UInt64>(0)

    /// True once the flusher has stopped (closed or failed).
    var isStopped: Bool { state.withLock { $0.stopped } }

    /// Starts the acknowledger and flusher threads; if one cannot start, stops
    /// the other before throwing. `recovered` is consumed: the writer's copy is
    /// the only one (see ``JournalRecovery/Outcome``).
    init(ringSync: RingSync, mode: Mode, journalFullWait: Duration, window: IdempotencyWindow,
         recovered: consuming JournalIndex, checkpoint: UInt64, stored: any StoredStreams) throws {
        let ring = ringSync.ring
        self.ring = ring
        self.ringSync = ringSync
        self.stored = stored
        self.epoch = ringSync.epoch
        self.mode = mode
        self.journalFullWaitNanoseconds = Atomic(journalFullWait.nanoseconds)
        self.acknowledger = try Acknowledger(owner: ring.file.path.string)
        self.flusherThread = BackgroundThread(name: "rs-flusher", owner: ring.file.path.string)
        self.splitterWakeBytes = min(256 << 10, max(4 << 10, ring.capacity / 64))
        let end = ringSync.written.load(ordering: .acquiring)
        self.state = Mutex(State(index: recovered, window: window,
                                 reserved: end, checkpoint: checkpoint))
        do {
            try flusherThread.start { [self] in self.runFlusher() }
        } catch {
            acknowledger.finishAndWait()
            throw error
        }
    }

    /// The cursor acknowledgements (and readers) follow: durable, or written in relaxed mode.
    var acknowledged: UInt64 {
        switch mode {
        case .durable: durable
        case .relaxed: written
        }
    }

    // MARK: - Appending

    /// One validated append, ready to encode.
    struct PreparedAppend: Sendable {
        var stream: String
        var expected: ExpectedVersion
        var events: [EventData]
        /// Encoded record length of all events (each one's is ``recordLength(of:)``).
        var totalLength: Int
        /// Set when this append is a tombstone: it hard-deletes that stream.
        var tombstone: TombstoneTarget? = nil

        /// The encoded record length of `event` in this append: arithmetic on
        /// counts, done again where it is needed rather than kept in an array
        /// (one allocation less per append).
        func recordLength(of event: EventData) -> Int {
            JournalRecord.eventLength(streamCount: stream.utf8.count, typeCount: event.type.utf8.count,
                                      metadataCount: event.metadata.count, dataCount: event.data.count)
        }
    }

    /// Adds a stream whose records have all left the ring (or that has none) to
    /// the index. `nextVersion` comes from its stream file: one past
    /// ``StreamState/versionLimit`` is damage, reported rather than stored.
    func introduce(_ stream: String, nextVersion: UInt64, deleted: Bool = false) throws {
        guard nextVersion <= StreamState.versionLimit else {
            throw RingstoreError(.corruptData, "stream \"\(stream)\" is stored with \(nextVersion) events, more than a stream can have (\(StreamState.versionLimit))",
                                 stream: stream)
        }
        state.withLock { s in
            if s.index.streams[stream] == nil {
                s.index.streams[stream] = StreamState(nextVersion: nextVersion, deleted: deleted)
            }
        }
    }

    /// Appends; `whyFull` says why the ring is not draining, if anything is known
    /// (the splitter's or checkpointer's failure), for the journal-full error.
    func append(_ append: PreparedAppend, whyFull: () -> RingstoreError? = { nil }) async throws -> AppendResult {
        var waitingSince: Int64?
        while true {
            let outcome = try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Outcome, any Error>) in
                stage(append, continuation: continuation)
            }
            switch outcome {
            case .appended(let result):
                return result
            case .unknownStream:
                if let stored = stored.storedName(equivalentTo: append.stream), !Naming.sameStream(stored, append.stream) {
                    throw Naming.equivalentNameError(append.stream, stored: stored)
                }
                try introduce(append.stream, nextVersion: try stored.storedNextVersion(of: append.stream),
                              deleted: try deletions.isDeleted(append.stream))
            case .retryOfStored(let check):
                if let result = try storedRetry(append, check) { return result }
                throw check.otherwise
            case .journalFull(let needed):
                let now = monotonicNanoseconds()
                if waitingSince == nil {
                    waitingSince = now
                    journalFullWaits.add(1, ordering: .relaxed)
                }
                let wait = journalFullWaitNanoseconds.load(ordering: .relaxed)
                if now - waitingSince! >= wait { throw journalFullError(needed: needed, waited: wait, cause: whyFull()) }
                // Ring space frees up only as the splitter checkpoints, which takes
                // milliseconds; polling at that pace keeps the common path free of
                // any bookkeeping for waiters.
                try await Task.sleep(for: .milliseconds(1))
            }
        }
    }

    /// The first append's result if the stream file holds this append's IDs
    /// from `check.firstVersion` up to where the ring's part (already compared) begins.
    private func storedRetry(_ append: PreparedAppend, _ check: StoredRetry) throws -> AppendResult? {
        let first = check.firstVersion
        let storedCount = Int(check.ringFirstVersion - first)
        let stored = try self.stored.storedEvents(of: append.stream, from: first, count: storedCount)
        guard stored.count == storedCount, stored.first?.version == first,
              stored.lazy.map(\.id).elementsEqual(append.events[..<storedCount].lazy.map(\.id))
        else { return nil }
        return AppendResult(firstVersion: first, lastVersion: first + UInt64(append.events.count - 1),
                            firstPosition: stored[0].position,
                            lastPosition: check.lastPositionInRing ?? stored[storedCount - 1].position)
    }

    /// The error of an append that waited `waited` nanoseconds for ring space.
    /// With a `cause` (the splitter cannot write the stream files, e.g. the disk is
    /// full) the message names it, since no longer wait or larger ring would help.
    private func journalFullError(needed: Int, waited: Int64, cause: RingstoreError?) -> RingstoreError {
        let (reserved, checkpoint) = state.withLock { ($0.reserved, $0.checkpoint) }
        let used = reserved - checkpoint
        let seconds = Double(waited) / 1e9
        let why = cause.map { "the checkpoint cannot move, the splitter reports: \($0.message)" }
            ?? "stream files are not keeping up — raise journalFullWait or the journal capacity"
        return RingstoreError(
            .journalFull,
            "journal full: waited \(seconds) s for \(needed) bytes of ring space (\(used) of \(ring.capacity) bytes in use, checkpoint at \(checkpoint)); \(why)",
            path: ring.file.path.string, cause: cause)
    }

    /// The single locked section of an append. Resumes `continuation` at once
    /// unless the append was staged (or is a retry of one not yet acknowledged),
    /// in which case the flusher resumes it.
    private func stage(_ append: PreparedAppend, continuation: UnsafeContinuation<Outcome, any Error>) {
        enum Next { case wakeFlusher(Bool), resume(Result<Outcome, any Error>) }
        let next: Next = state.withLock { s in
            if let failure = s.failure { return .resume(.failure(failure)) }
            if s.closing { return .resume(.failure(RingstoreError(.storeClosed, "the store is closed", stream: append.stream))) }

            // One hash lookup; the entry is then read and updated in place (copying it
            // out would make the next append to its arrays copy them whole).
            guard let slot = s.index.streams.index(forKey: append.stream) else { return .resume(.success(.unknownStream)) }
            // The table's `String` keys equate Unicode-equivalent names; streams are their bytes.
            let key = s.index.streams.keys[slot]
            guard Naming.sameStream(key, append.stream) else {
                return .resume(.failure(Naming.equivalentNameError(append.stream, stored: key)))
            }
            if s.index.streams.values[slot].deleted { return .resume(.failure(deletedError(append.stream))) }
            let current = s.index.streams.values[slot].currentVersion
            switch checkExpectedVersion(append, current: current, state: &s) {
            case .proceed:
                break
            case .duplicate(let result):
                if result.lastPosition < acknowledged { return .resume(.success(.appended(result))) }
                s.waiters.append(Waiter(lastPosition: result.lastPosition, result: result, continuation: continuation))
                return .wakeFlusher(Self.wakesFlusher(&s))
            case .reject(let error):
                return .resume(.failure(error))
            case .checkStored(let check):
                return .resume(.success(.retryOfStored(check)))
            }

            let firstVersion = current.map { $0 + 1 } ?? 0
            // Versions come from disk (recovery, stream files): a stream there may have no room left.
            guard UInt64(append.events.count) <= StreamState.versionLimit - firstVersion else {
                return .resume(.failure(RingstoreError(
                    .corruptData,
                    "stream \"\(append.stream)\" is at version \(current.map { "\($0)" } ?? "none"): \(append.events.count) more events would pass the largest version a stream can have (\(StreamState.versionLimit - 1)); its stored versions cannot be right",
                    stream: append.stream)))
            }

            // Space: a record never straddles the ring's end, so pad the tail if needed.
            let start = s.reserved
            let tail = ring.bytesToEnd(from: start)
            let padding = tail < UInt64(append.totalLength) ? tail : 0
            guard start + padding + UInt64(append.totalLength) <= s.checkpoint + ring.capacity else {
                return .resume(.success(.journalFull(needed: Int(padding) + append.totalLength)))
            }
            if let tombstone = append.tombstone {
                // The deleted stream and this metadata stream close in the same lock
                // section that stages the tombstone: no append can land after it.
                if let error = markDeleted(tombstone, state: &s) { return .resume(.failure(error)) }
                s.index.streams.values[slot].deleted = true
            }
            if padding >= UInt64(JournalRecord.paddingSize) {
                let pointer = s.staging.reserve(JournalRecord.paddingSize, at: start)
                JournalRecord.encodePadding(into: pointer, length: Int(padding), position: start, epoch: epoch)
            }
            let timestamp = wallClockNanoseconds()
            var position = start + padding
            let firstPosition = position
            var lastPosition = position
            let lastIndex = append.events.count - 1
            // Each event goes into the index as it is encoded: no arrays of positions
            // and IDs to build and free per append.
            s.index.reserve(append.events.count, at: slot)
            var streamName = append.stream
            streamName.withUTF8 { streamBytes in
                for i in append.events.indices {
                    let length = append.recordLength(of: append.events[i])
                    let pointer = s.staging.reserve(length, at: position)
                    let fields = JournalRecord.EventFields(
                        position: position, epoch: epoch, version: firstVersion + UInt64(i), id: append.events[i].id,
                        timestampNanoseconds: timestamp, json: append.events[i].contentType == .json, endOfAppend: i == lastIndex)
                    var type = append.events[i].type
                    type.withUTF8 { typeBytes in
                        append.events[i].metadata.withUnsafeBytes { metadata in
                            append.events[i].data.withUnsafeBytes { data in
                                JournalRecord.encodeEvent(
                                    into: pointer, length: length, fields: fields,
                                    stream: UnsafeRawBufferPointer(streamBytes),
                                    type: UnsafeRawBufferPointer(typeBytes),
                                    metadata: metadata, data: data)
                            }
                        }
                    }
                    s.index.record(at: slot, position: position, id: append.events[i].id)
                    lastPosition = position
                    position += UInt64(length)
                }
            }
            s.reserved = position
            let result = AppendResult(
                firstVersion: firstVersion, lastVersion: firstVersion + UInt64(lastIndex),
                firstPosition: firstPosition, lastPosition: lastPosition)
            // The index's copy of the name: the caller's may be a heap object of its own.
            s.window.remember(append.events[0].id, .init(stream: s.index.streams.keys[slot], firstVersion: firstVersion, count: append.events.count))
            s.waiters.append(Waiter(lastPosition: result.lastPosition, result: result, continuation: continuation))
            return .wakeFlusher(Self.wakesFlusher(&s))
        }
        switch next {
        case .wakeFlusher(let wasIdle):
            if wasIdle { wake.signal() }
        case .resume(let result):
            continuation.resume(with: result)
        }
    }

    private enum VersionCheck {
        case proceed
        case duplicate(AppendResult)
        case checkStored(StoredRetry)
        case reject(RingstoreError)
    }

    /// Applies the expected-version rule, recognising a retry of an earlier
    /// append (same event IDs at the same versions) as a success that writes nothing.
    private func checkExpectedVersion(_ append: PreparedAppend, current: UInt64?, state s: inout State) -> VersionCheck {
        let count = append.events.count
        func wrong() -> RingstoreError {
            let currentText = current.map { "is at version \($0)" } ?? "does not exist"
            return RingstoreError(
                .wrongExpectedVersion,
                "append to stream \"\(append.stream)\" expected \(append.expected.text), but the stream \(currentText)",
                stream: append.stream, currentVersion: current)
        }
        /// Whether this append repeats the one that took versions from
        /// `firstVersion` on: its IDs there are compared with the ring's, and with
        /// the stream file's for versions that have left the ring (a checkpoint
        /// may have fallen inside that append, leaving part in each). Nil if it
        /// cannot be a retry; `.checkStored` when the file must confirm it.
        func retry(from firstVersion: UInt64, otherwise: RingstoreError) -> VersionCheck? {
            guard let slot = s.index.streams.index(forKey: append.stream) else { return nil }
            let nextVersion = s.index.streams.values[slot].nextVersion
            let ringFirst = s.index.streams.values[slot].ringFirstVersion
            // All of its versions must exist.
            guard firstVersion < nextVersion, nextVersion - firstVersion >= UInt64(count) else { return nil }
            let last = firstVersion + UInt64(count - 1)
            let inRingFrom = max(firstVersion, ringFirst)
            var lastPosition: UInt64?
            if inRingFrom <= last {
                let skipped = Int(inRingFrom - firstVersion)
                let start = Int(inRingFrom - ringFirst)
                let end = Int(last - ringFirst)
                let entries = s.index.streams.values[slot].entries[start...end]
                guard entries.lazy.map(\.id).elementsEqual(append.events[skipped...].lazy.map(\.id)) else { return nil }
                lastPosition = entries.last!.position
                if skipped == 0 {
                    return .duplicate(AppendResult(firstVersion: firstVersion, lastVersion: last,
                                                   firstPosition: entries.first!.position, lastPosition: entries.last!.position))
                }
            }
            return .checkStored(StoredRetry(firstVersion: firstVersion, ringFirstVersion: min(inRingFrom, last + 1),
                                            lastPositionInRing: lastPosition, otherwise: otherwise))
        }
        func windowRetry() -> VersionCheck? {
            guard let entry = s.window.lookup(append.events[0].id) else { return nil }
            let conflict = RingstoreError(
                .idempotencyConflict,
                "event \(append.events[0].id) was already appended to stream \"\(entry.stream)\" at version \(entry.firstVersion) in an append of \(entry.count) events that this one does not repeat exactly",
                stream: append.stream)
            if entry.stream == append.stream, entry.count == count,
               let check = retry(from: entry.firstVersion, otherwise: conflict) {
                return check
            }
            return .reject(conflict)
        }
        switch append.expected {
        case .any:
            return windowRetry() ?? .proceed
        case .streamExists:
            if let check = windowRetry() { return check }
            return current == nil ? .reject(wrong()) : .proceed
        case .noStream:
            guard current != nil else { return .proceed }
            return retry(from: 0, otherwise: wrong()) ?? .reject(wrong())
        case .exact(let expected):
            guard let current else { return .reject(wrong()) }
            if current == expected { return .proceed }
            // `expected < current` here, so `expected + 1` cannot overflow.
            if current > expected, let check = retry(from: expected + 1, otherwise: wrong()) { return check }
            return .reject(wrong())
        }
    }

    // MARK: - Flushing

    /// What the flusher found when it looked under the lock.
    private enum Work {
        /// Nothing staged and no waiter registered.
        case none
        /// A batch whose `pwrite` failed is still owed: nothing newer is taken until it is written.
        case retry
        /// The staged batch, swapped out, and the waiters registered with it.
        case batch(StagingBuffer, [Waiter])

        var isNone: Bool {
            if case .none = self { return true }
            return false
        }
    }

    /// How long the flusher may sleep once a pass is done.
    private enum Sleep {
        /// Until an append, `close()` or a failed outside sync wakes it.
        case untilWoken
        /// Until then (monotonic nanoseconds) at the latest: the relaxed flush interval.
        case until(Int64)
    }

    private func runFlusher() {
        var pending: [Waiter] = []
        var oldestUnsynced: Int64 = 0
        var lastSync = monotonicNanoseconds()
        // A batch whose `pwrite` failed: written again before anything newer is taken.
        var unwritten: StagingBuffer?
        var consecutiveFailures = 0
        // The acknowledged cursor when the splitter was last rung.
        var announced = acknowledged
        var groupCommit: GroupCommitPolicy? = nil
        if case .durable(let delay) = mode { groupCommit = GroupCommitPolicy(maxDelayNanoseconds: delay) }
        while true {
            // Set when this pass leaves a batch unsynced to let more appends join it.
            var gatherUntil: Int64? = nil
            var closing = false
            var checkpoint: UInt64 = 0
            let work: Work = state.withLock { s in
                closing = s.closing
                // Read here rather than in a lock section of its own before the write: a
                // checkpoint only moves forward, so an earlier value only zero-fills less.
                checkpoint = s.checkpoint
                s.flusherIdle = false  // awake; only `sleepIfIdle` sets it
                if unwritten != nil { return .retry }  // `spare` still holds it
                if s.staging.isEmpty && s.waiters.isEmpty { return .none }
                swap(&s.staging, &s.spare)
                let waiters = s.waiters
                s.waiters.removeAll(keepingCapacity: true)
                return .batch(s.spare, waiters)
            }
            var wroteBytes = false
            do {
                let buffer: StagingBuffer?
                switch work {
                case .none:
                    buffer = nil
                case .retry:
                    buffer = unwritten
                case .batch(let taken, let waiters):
                    pending.append(contentsOf: waiters)
                    buffer = taken
                }
                if let buffer, !buffer.isEmpty {
                    wroteBytes = true
                    unwritten = buffer
                    let freeEnd = checkpoint + ring.capacity
                    let segments = buffer.segments
                    for (i, segment) in segments.enumerated() {
                        try ring.write(buffer.bytes(of: segment), at: segment.position,
                                       zeroFillingPageBefore: i == segments.count - 1 ? freeEnd : nil)
                    }
                    unwritten = nil
                    if written == durable { oldestUnsynced = monotonicNanoseconds() }
                    ringSync.written.store(buffer.endPosition, ordering: .releasing)
                    buffer.reset()
                }
                let repair = ringSync.needsRepair
                if repair || written > durable {
                    let now = monotonicNanoseconds()
                    let due: Bool
                    switch mode {
                    case .durable(let delay):
                        // Sync when nothing more is queued (and no more appends are about to join:
                        // see GroupCommitPolicy), or when the oldest unsynced write has waited long enough.
                        if repair || closing || now - oldestUnsynced >= delay {
                            due = true
                        } else if wroteBytes {
                            due = false
                        } else {
                            gatherUntil = groupCommit?.gatherUntil(lastSync: lastSync, now: now)
                            due = gatherUntil == nil
                        }
                    case .relaxed(let interval):
                        due = repair || closing || now - lastSync >= interval
                    }
                    if due {
                        let syncStarted = monotonicNanoseconds()
                        try ringSync.sync()
                        flushCount.add(1, ordering: .relaxed)
                        lastSync = monotonicNanoseconds()
                        let took = lastSync - syncStarted
                        groupCommit?.synced(nanoseconds: took, endedAt: lastSync)
                        flushObserver.flushed(nanoseconds: took)
                    }
                }
                consecutiveFailures = 0
            } catch {
                if closing || ringSync.lost != nil {
                    fail(with: error, pending: pending)
                    return
                }
                // Not acknowledged, outcome unknown: tell the waiting appends now rather
                // than holding them through the backoff, then retry.
                if !pending.isEmpty {
                    acknowledger.submit(.fail(pending, unknownOutcomeError(error)))
                    pending.removeAll()
                }
                consecutiveFailures += 1
                let backoff = min(500_000_000, 5_000_000 << min(consecutiveFailures - 1, 10))
                _ = wake.wait(timeout: .now() + .nanoseconds(backoff))  // `close()` signals to cut it short
                continue
            }
            if !pending.isEmpty { resumeAcknowledged(&pending) }
            // Also when another thread's sync (a checkpoint's header write) moved the cursor.
            let cursor = acknowledged
            if cursor >= announced + splitterWakeBytes {
                announced = cursor
                advanced.ring()
            }
            if case .none = work, closing, written == durable, pending.isEmpty {
                stop()
                return
            }
            if let gatherUntil {
                gatheredBatches.add(1, ordering: .relaxed)
                // Appends staged meanwhile do not wake it: they join the batch at the deadline.
                sleepIfIdle(.until(gatherUntil), wakeForAppends: false)
            } else if let sleep = idleSleep(tookWork: !(work.isNone), pending: !pending.isEmpty, closing: closing, lastSync: lastSync) {
                sleepIfIdle(sleep)
            }
        }
    }

    /// How long the flusher may sleep after a pass, or nil if it has more to do at once.
    private func idleSleep(tookWork: Bool, pending: Bool, closing: Bool, lastSync: Int64) -> Sleep? {
        // More may have been staged meanwhile; and a durable batch is synced once nothing more is queued.
        if tookWork || pending || closing || ringSync.needsRepair { return nil }
        guard written > durable else { return .untilWoken }
        switch mode {
        case .durable:
            return nil
        case .relaxed(let interval):
            let deadline = lastSync + interval
            return deadline > monotonicNanoseconds() ? .until(deadline) : nil
        }
    }

    /// Whether the append just staged must wake the flusher (then no longer idle):
    /// not while it gathers a batch until a deadline.
    private static func wakesFlusher(_ s: inout State) -> Bool {
        guard s.flusherIdle, s.flusherWokenByAppends else { return false }
        s.flusherIdle = false
        return true
    }

    /// The flusher's only sleep that an append must end: it marks itself idle
    /// under the writer lock, and only if nothing is staged, so an append staged
    /// after that look finds it idle and wakes it (see `stage`). A stray wake
    /// (a signal from a stage that raced a timeout) only costs one empty pass.
    private func sleepIfIdle(_ sleep: Sleep, wakeForAppends: Bool = true) {
        let idle = state.withLock { s in
            guard s.staging.isEmpty && s.waiters.isEmpty && !s.closing else { return false }
            s.flusherIdle = true
            s.flusherWokenByAppends = wakeForAppends
            return true
        }
        guard idle else { return }
        switch sleep {
        case .untilWoken:
            wake.wait()
        case .until(let deadline):
            let remaining = max(0, deadline - monotonicNanoseconds())
            _ = wake.wait(timeout: .now() + .nanoseconds(Int(min(remaining, Int64(Int.max)))))
        }
    }

    /// The error for appends whose write or flush failed.
    private func unknownOutcomeError(_ error: any Error) -> RingstoreError {
        RingstoreError(
            .ioError,
            "the journal write or flush for this append failed, so it is not acknowledged; its events may or may not be stored. The store keeps retrying the flush: retry the append with the same event IDs (a retry of a stored append is recognised and succeeds without writing twice)",
            path: ring.file.path.string, cause: error as? RingstoreError)
    }

    /// Hands every waiter the acknowledged cursor now covers to the acknowledger.
    private func resumeAcknowledged(_ pending: inout [Waiter]) {
        let cursor = acknowledged
        if pending.allSatisfy({ $0.lastPosition < cursor }) {
            acknowledger.submit(.acknowledge(pending))
            pending.removeAll(keepingCapacity: true)
            return
        }
        let covered = pending.filter { $0.lastPosition < cursor }
        pending.removeAll { $0.lastPosition < cursor }
        if !covered.isEmpty { acknowledger.submit(.acknowledge(covered)) }
    }

    private func fail(with error: any Error, pending: [Waiter]) {
        let failure = RingstoreError(
            .storeFailed,
            "the journal could not be written or flushed; no further appends are accepted until the store is reopened",
            path: ring.file.path.string, cause: error as? RingstoreError)
        let (queued, stoppedWaiters) = state.withLock { s in
            s.failure = failure
            s.stopped = true
            let queued = s.waiters
            s.waiters.removeAll()
            let stoppedWaiters = s.onStopped
            s.onStopped.removeAll()
            return (queued, stoppedWaiters)
        }
        acknowledger.submit(.fail(pending + queued, failure))
        acknowledger.submit(.notify { for waiter in stoppedWaiters { waiter.resume() } })
        acknowledger.submit(.finish)
    }

    private func stop() {
        let waiters = state.withLock { s in
            s.stopped = true
            let waiters = s.onStopped
            s.onStopped.removeAll()
            return waiters
        }
        // After every acknowledgement already handed over.
        acknowledger.submit(.notify { for waiter in waiters { waiter.resume() } })
        acknowledger.submit(.finish)
    }

    // MARK: - Closing

    /// Refuses new appends, writes and flushes everything staged, and returns
    /// once the flusher has stopped and both threads have exited (so that what
    /// they held, the ring's mapping included, can go). Appends already staged
    /// are acknowledged.
    func close() async {
        state.withLock { $0.closing = true }
        wake.signal()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let stopped = state.withLock { s in
                if s.stopped { return true }
                s.onStopped.append(continuation)
                return false
            }
            if stopped { continuation.resume() }
        }
        // Every acknowledgement (or failure) handed over before the stop has been delivered
        // once the acknowledger has handled its finish notice and exited.
        await acknowledger.thread.exited()
        await flusherThread.exited()
    }

    /// Lets appends reuse ring space before `position` (already checkpointed
    /// durably) and forgets the index entries of the records there.
    func releaseSpace(before position: UInt64, streams: some Collection<String>) {
        state.withLock { s in
            guard position > s.checkpoint else { return }
            s.checkpoint = position
            s.index.forget(before: position, streams: streams)
        }
    }

    /// The failure that poisoned the writer, if any.
    var failure: RingstoreError? { state.withLock { $0.failure } }

    /// Flushes everything written so far and returns once it is durable.
    func flush() async throws {
        // An append of nothing would need a record; instead wait for the cursor.
        let target = state.withLock { $0.reserved }
        guard durable < target else { return }
        if let failure { throw failure }
        if case .relaxed = mode {
            // Sync now rather than wait for the interval (after a failed sync, this
            // one writes the unflushed range again first).
            try await forceSync(upTo: target)
            return
        }
        while durable < target {
            if let failure { throw failure }
            if let error = ringSync.lastError { throw error }
            try await Task.sleep(for: .microseconds(100))
        }
    }

    /// Makes the journal durable at least up to `target` (≤ written), from the
    /// calling thread: the splitter uses it before a checkpoint in relaxed mode.
    func syncNow(upTo target: UInt64) throws {
        guard durable < target else { return }
        precondition(written >= target, "cannot sync past the written cursor")
        try syncFromOutside()
    }

    /// Relaxed mode: make everything up to `target` durable now.
    private func forceSync(upTo target: UInt64) async throws {
        while written < target {
            if let failure { throw failure }
            try await Task.sleep(for: .microseconds(100))
        }
        // The flusher owns the written cursor, not the syncs: any sync of the ring
        // goes through `RingSync`, which serialises them.
        try syncFromOutside()
    }

    /// Writes a header slot of the journal and syncs it (through ``RingSync``:
    /// the header's sync is a sync of the ring like any other).
    func writeHeader(_ bytes: [UInt8], at offset: UInt64) throws {
        do {
            try ringSync.writeHeader(bytes, at: offset)
        } catch {
            wake.signal()  // a failed sync leaves a repair (or a lost record) for the flusher
            throw error
        }
    }

    /// A sync from another thread (the splitter, `flush()` in relaxed mode).
    private func syncFromOutside() throws {
        do {
            try ringSync.sync()
            flushCount.add(1, ordering: .relaxed)
        } catch {
            wake.signal()  // a failed sync leaves a repair (or a lost record) for the flusher
            throw error
        }
    }
}

extension ExpectedVersion {
    var text: String {
        switch self {
        case .any: "any version"
        case .noStream: "no stream"
        case .streamExists: "an existing stream"
        case .exact(let version): "version \(version)"
        }
    }
}
