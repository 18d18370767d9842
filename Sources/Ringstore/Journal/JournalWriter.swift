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
/// without writing them, a retry never trusts the page cache: it first writes
/// the whole unflushed range again (copied from the mapping, each record's
/// checksum and position verified) and only then flushes. Appends staged
/// meanwhile wait for the next attempt. Only if the unflushed records can no
/// longer be read back intact, or a flush fails while the store is closing, is
/// the writer poisoned: every later append fails with
/// ``RingstoreError/Code/storeFailed`` until the store is reopened.
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
        /// A retry of an append whose events have left the ring: compare its IDs with the stream file's.
        case retryOfStored(firstVersion: UInt64)
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

    /// Records `pwrite`n into the ring (the page cache) end here.
    let written: Atomic<UInt64>
    /// Records flushed to stable storage end here.
    let durable: Atomic<UInt64>
    /// Serialises every `fdatasync` of the ring (flusher, splitter, `flush()`), so
    /// that a failure is seen by exactly one caller and recorded before the next
    /// sync: a later sync of the same file can succeed without having written
    /// the pages the failed one dropped.
    private let ringSync = Mutex(RingSyncState())
    let flushCount = Atomic<UInt64>(0)
    /// Times the unflushed range was written again after a failed flush (tests).
    let rewriteCount = Atomic<UInt64>(0)
    let acknowledger = Acknowledger()
    /// Rung (on the flusher thread) whenever the acknowledged cursor moves: the splitter waits on it.
    let advanced = Doorbell()
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

    init(ring: RingFile, epoch: UInt32, mode: Mode, journalFullWait: Duration, idempotencyWindow: Int,
         recovered: JournalIndex, end: UInt64, checkpoint: UInt64, stored: any StoredStreams) {
        self.ring = ring
        self.stored = stored
        self.epoch = epoch
        self.mode = mode
        self.journalFullWaitNanoseconds = Atomic(journalFullWait.nanoseconds)
        self.written = Atomic(end)
        self.durable = Atomic(end)
        self.state = Mutex(State(index: recovered, window: IdempotencyWindow(capacity: idempotencyWindow),
                                 reserved: end, checkpoint: checkpoint))
        BackgroundThread.start(name: "rs-flusher") { [self] in self.runFlusher() }
    }

    /// The cursor acknowledgements (and readers) follow: durable, or written in relaxed mode.
    var acknowledged: UInt64 {
        switch mode {
        case .durable: durable.load(ordering: .acquiring)
        case .relaxed: written.load(ordering: .acquiring)
        }
    }

    // MARK: - Appending

    /// One validated append, ready to encode.
    struct PreparedAppend: Sendable {
        var stream: String
        var expected: ExpectedVersion
        var events: [EventData]
        /// Encoded record length of each event.
        var lengths: [Int]
        var totalLength: Int
        /// Set when this append is a tombstone: it hard-deletes that stream.
        var tombstone: TombstoneTarget? = nil
    }

    /// Adds a stream whose records have all left the ring (or that has none) to the index.
    func introduce(_ stream: String, nextVersion: UInt64, deleted: Bool = false) {
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
            let outcome: Outcome
            do {
                outcome = try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Outcome, any Error>) in
                    stage(append, continuation: continuation)
                }
            } catch let error as RingstoreError where error.code == .wrongExpectedVersion {
                if let result = try retryOfStoredAppend(append, current: error.currentVersion) { return result }
                throw error
            }
            switch outcome {
            case .appended(let result):
                return result
            case .unknownStream:
                introduce(append.stream, nextVersion: try stored.storedNextVersion(of: append.stream),
                          deleted: try deletions.isDeleted(append.stream))
            case .retryOfStored(let firstVersion):
                if let result = try storedRetry(append, firstVersion: firstVersion) { return result }
                throw RingstoreError(
                    .idempotencyConflict,
                    "event \(append.events[0].id) was already appended to stream \"\(append.stream)\" at version \(firstVersion) in an append that this one does not repeat exactly",
                    stream: append.stream)
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

    /// A retry of an append whose events have left the ring: the same IDs at the
    /// versions the append would have taken, read from the stream file (so durable).
    private func retryOfStoredAppend(_ append: PreparedAppend, current: UInt64?) throws -> AppendResult? {
        let first: UInt64
        switch append.expected {
        case .exact(let expected):
            guard expected < .max else { return nil }  // no version follows it: not a retry (and no overflow)
            first = expected + 1
        case .noStream: first = 0
        case .any, .streamExists: return nil
        }
        let (last, overflow) = first.addingReportingOverflow(UInt64(append.events.count - 1))
        guard let current, !overflow, current >= last else { return nil }
        return try storedRetry(append, firstVersion: first)
    }

    /// The first append's result if the stream file holds exactly this append's IDs from `first` on.
    private func storedRetry(_ append: PreparedAppend, firstVersion first: UInt64) throws -> AppendResult? {
        let stored = try self.stored.storedEvents(of: append.stream, from: first, count: append.events.count)
        guard stored.count == append.events.count, stored.first?.version == first,
              stored.map(\.id) == append.events.map(\.id)
        else { return nil }
        return AppendResult(firstVersion: first, lastVersion: stored.last!.version,
                            firstPosition: stored.first!.position, lastPosition: stored.last!.position)
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
            if s.index.streams.values[slot].deleted { return .resume(.failure(deletedError(append.stream))) }
            let current = s.index.streams.values[slot].currentVersion
            switch checkExpectedVersion(append, current: current, state: &s) {
            case .proceed:
                break
            case .duplicate(let result):
                if result.lastPosition < acknowledged { return .resume(.success(.appended(result))) }
                s.waiters.append(Waiter(lastPosition: result.lastPosition, result: result, continuation: continuation))
                let wasIdle = s.flusherIdle
                s.flusherIdle = false
                return .wakeFlusher(wasIdle)
            case .reject(let error):
                return .resume(.failure(error))
            case .checkStored(let firstVersion):
                return .resume(.success(.retryOfStored(firstVersion: firstVersion)))
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
            let firstVersion = current.map { $0 + 1 } ?? 0
            let timestamp = wallClockNanoseconds()
            var position = start + padding
            var positions = [UInt64]()
            positions.reserveCapacity(append.events.count)
            var ids = [UUID]()
            ids.reserveCapacity(append.events.count)
            let lastIndex = append.events.count - 1
            var streamName = append.stream
            streamName.withUTF8 { streamBytes in
                for (i, event) in append.events.enumerated() {
                    let length = append.lengths[i]
                    let pointer = s.staging.reserve(length, at: position)
                    let fields = JournalRecord.EventFields(
                        position: position, epoch: epoch, version: firstVersion + UInt64(i), id: event.id,
                        timestampNanoseconds: timestamp, json: event.contentType == .json, endOfAppend: i == lastIndex)
                    var type = event.type
                    type.withUTF8 { typeBytes in
                        event.metadata.withUnsafeBytes { metadata in
                            event.data.withUnsafeBytes { data in
                                JournalRecord.encodeEvent(
                                    into: pointer, length: length, fields: fields,
                                    stream: UnsafeRawBufferPointer(streamBytes),
                                    type: UnsafeRawBufferPointer(typeBytes),
                                    metadata: metadata, data: data)
                            }
                        }
                    }
                    positions.append(position)
                    ids.append(event.id)
                    position += UInt64(length)
                }
            }
            s.reserved = position
            let result = AppendResult(
                firstVersion: firstVersion, lastVersion: firstVersion + UInt64(lastIndex),
                firstPosition: positions[0], lastPosition: positions[lastIndex])
            s.index.record(stream: append.stream, at: slot, positions: positions, ids: ids)
            // The index's copy of the name: the caller's may be a heap object of its own.
            s.window.remember(ids[0], .init(stream: s.index.streams.keys[slot], firstVersion: firstVersion, count: ids.count))
            s.waiters.append(Waiter(lastPosition: result.lastPosition, result: result, continuation: continuation))
            let wasIdle = s.flusherIdle
            s.flusherIdle = false
            return .wakeFlusher(wasIdle)
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
        case checkStored(firstVersion: UInt64)
        case reject(RingstoreError)
    }

    /// Applies the expected-version rule, recognising a retry of an earlier
    /// append (same event IDs at the same versions) as a success that writes nothing.
    private func checkExpectedVersion(_ append: PreparedAppend, current: UInt64?, state s: inout State) -> VersionCheck {
        let count = append.events.count
        func retry(from firstVersion: UInt64) -> AppendResult? {
            guard let stored = s.index.ids(of: append.stream, from: firstVersion, count: count),
                  stored.elementsEqual(append.events.lazy.map(\.id)),
                  let first = s.index.position(of: append.stream, version: firstVersion),
                  let last = s.index.position(of: append.stream, version: firstVersion + UInt64(count - 1))
            else { return nil }
            return AppendResult(firstVersion: firstVersion, lastVersion: firstVersion + UInt64(count - 1),
                                firstPosition: first, lastPosition: last)
        }
        func wrong() -> VersionCheck {
            let currentText = current.map { "is at version \($0)" } ?? "does not exist"
            return .reject(RingstoreError(
                .wrongExpectedVersion,
                "append to stream \"\(append.stream)\" expected \(append.expected.text), but the stream \(currentText)",
                stream: append.stream, currentVersion: current))
        }
        func windowRetry() -> VersionCheck? {
            guard let entry = s.window.lookup(append.events[0].id) else { return nil }
            if entry.stream == append.stream, entry.count == count {
                if let result = retry(from: entry.firstVersion) { return .duplicate(result) }
                // The first append's events have left the ring (they are durable in the stream file).
                if let state = s.index.streams[append.stream], entry.firstVersion < state.ringFirstVersion {
                    return .checkStored(firstVersion: entry.firstVersion)
                }
            }
            return .reject(RingstoreError(
                .idempotencyConflict,
                "event \(append.events[0].id) was already appended to stream \"\(entry.stream)\" at version \(entry.firstVersion) in an append of \(entry.count) events that this one does not repeat exactly",
                stream: append.stream))
        }
        switch append.expected {
        case .any:
            return windowRetry() ?? .proceed
        case .streamExists:
            if let check = windowRetry() { return check }
            return current == nil ? wrong() : .proceed
        case .noStream:
            guard current != nil else { return .proceed }
            return retry(from: 0).map(VersionCheck.duplicate) ?? wrong()
        case .exact(let expected):
            guard let current else { return wrong() }
            if current == expected { return .proceed }
            if current > expected, let result = retry(from: expected + 1) { return .duplicate(result) }
            return wrong()
        }
    }

    // MARK: - Flushing

    private func runFlusher() {
        var pending: [Waiter] = []
        var oldestUnsynced: Int64 = 0
        var lastSync = monotonicNanoseconds()
        // A batch whose `pwrite` failed: written again before anything newer is taken.
        var unwritten: StagingBuffer?
        var consecutiveFailures = 0
        while true {
            // Take everything staged, and every waiter registered so far.
            var closing = false
            let batch: (buffer: StagingBuffer, waiters: [Waiter])? = state.withLock { s in
                closing = s.closing
                if unwritten != nil { return nil }  // `spare` still holds it
                if s.staging.isEmpty && s.waiters.isEmpty {
                    s.flusherIdle = !s.closing
                    return nil
                }
                swap(&s.staging, &s.spare)
                let waiters = s.waiters
                s.waiters.removeAll(keepingCapacity: true)
                return (s.spare, waiters)
            }
            var wroteBytes = false
            var synced = false
            do {
                if let batch { pending.append(contentsOf: batch.waiters) }
                if let buffer = unwritten ?? batch?.buffer, !buffer.isEmpty {
                    wroteBytes = true
                    unwritten = buffer
                    let freeEnd = state.withLock { $0.checkpoint } + ring.capacity
                    let segments = buffer.segments
                    for (i, segment) in segments.enumerated() {
                        try ring.write(buffer.bytes(of: segment), at: segment.position,
                                       zeroFillingPageBefore: i == segments.count - 1 ? freeEnd : nil)
                    }
                    unwritten = nil
                    if written.load(ordering: .relaxed) == durable.load(ordering: .relaxed) {
                        oldestUnsynced = monotonicNanoseconds()
                    }
                    written.store(buffer.endPosition, ordering: .releasing)
                    buffer.reset()
                }
                let unsynced = written.load(ordering: .relaxed) > durable.load(ordering: .relaxed)
                if unsynced {
                    let now = monotonicNanoseconds()
                    let due: Bool
                    switch mode {
                    case .durable(let delay):
                        // Sync when nothing more is queued, or when the oldest unsynced write has waited long enough.
                        due = !wroteBytes || now - oldestUnsynced >= delay
                    case .relaxed(let interval):
                        due = closing || now - lastSync >= interval
                    }
                    if due {
                        let syncStarted = monotonicNanoseconds()
                        try syncFromFlusher()
                        flushObserver.flushed(nanoseconds: monotonicNanoseconds() - syncStarted)
                        lastSync = monotonicNanoseconds()
                        synced = true
                    }
                }
                consecutiveFailures = 0
            } catch {
                if closing || error is LostJournalBytes {
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
            if wroteBytes || synced { advanced.ring() }
            if batch == nil {
                if closing && written.load(ordering: .relaxed) == durable.load(ordering: .relaxed) && pending.isEmpty {
                    stop()
                    return
                }
                if !closing && pending.isEmpty { sleep(lastSync: lastSync) }
            }
        }
    }

    private func sleep(lastSync: Int64) {
        switch mode {
        case .durable:
            if written.load(ordering: .relaxed) == durable.load(ordering: .relaxed) { wake.wait() }
        case .relaxed(let interval):
            if written.load(ordering: .relaxed) == durable.load(ordering: .relaxed) {
                wake.wait()
            } else {
                let remaining = max(0, lastSync + interval - monotonicNanoseconds())
                _ = wake.wait(timeout: .now() + .nanoseconds(Int(min(remaining, Int64(Int.max)))))
            }
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
            path: ring.file.path.string, cause: (error as? LostJournalBytes)?.error ?? error as? RingstoreError)
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
    /// once the flusher has stopped. Appends already staged are acknowledged.
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
        // once the acknowledger has handled its finish notice.
        while !acknowledger.finished.load(ordering: .acquiring) { try? await Task.sleep(for: .milliseconds(1)) }
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
        while durable.load(ordering: .acquiring) < target {
            if let failure { throw failure }
            if let error = ringSync.withLock({ $0.lastError }) { throw error }
            if case .relaxed = mode {
                // Ask the flusher for an interval flush now.
                try await forceSync(upTo: target)
                return
            }
            try await Task.sleep(for: .microseconds(100))
        }
    }

    /// Makes the journal durable at least up to `target` (≤ written), from the
    /// calling thread: the splitter uses it before a checkpoint in relaxed mode.
    func syncNow(upTo target: UInt64) throws {
        guard durable.load(ordering: .acquiring) < target else { return }
        precondition(written.load(ordering: .acquiring) >= target, "cannot sync past the written cursor")
        try syncFromOutside()
    }

    /// Relaxed mode: make everything up to `target` durable now.
    private func forceSync(upTo target: UInt64) async throws {
        while written.load(ordering: .acquiring) < target {
            if let failure { throw failure }
            try await Task.sleep(for: .microseconds(100))
        }
        // The flusher owns fdatasync for the ring, but an extra fdatasync from here
        // is harmless: it only makes more data durable than the cursor claims.
        try syncFromOutside()
    }

    /// The state of the ring's flushes, under ``ringSync``.
    struct RingSyncState {
        /// A flush failed: the unflushed range must be written again before a flush may count.
        var needsRewrite = false
        /// The last flush failure, until a flush succeeds.
        var lastError: RingstoreError?
    }

    /// Thrown when the unflushed records cannot be read back intact for rewriting.
    struct LostJournalBytes: Error {
        var error: RingstoreError
    }

    /// The flusher's sync: after a failed one, first writes the unflushed range again.
    private func syncFromFlusher() throws {
        try ringSync.withLock { (s: inout RingSyncState) throws in
            let target = written.load(ordering: .relaxed)
            do {
                if s.needsRewrite {
                    try rewriteUnflushed(from: durable.load(ordering: .acquiring), to: target)
                    rewriteCount.add(1, ordering: .relaxed)
                }
                try ring.sync()
            } catch let lost as LostJournalBytes {
                throw lost
            } catch {
                s.needsRewrite = true
                s.lastError = error as? RingstoreError ?? RingstoreError(.ioError, "journal flush failed: \(error)")
                throw error
            }
            s.needsRewrite = false
            s.lastError = nil
            advanceDurable(to: target)
        }
    }

    /// A sync from another thread (the splitter, `flush()` in relaxed mode). While
    /// the flusher has a rewrite to do, it refuses rather than let a sync that
    /// covers nothing move the durable cursor.
    private func syncFromOutside() throws {
        do {
            try ringSync.withLock { (s: inout RingSyncState) throws in
                if let error = s.lastError, s.needsRewrite { throw error }
                let reached = written.load(ordering: .acquiring)
                do {
                    try ring.sync()
                } catch {
                    s.needsRewrite = true
                    s.lastError = error as? RingstoreError ?? RingstoreError(.ioError, "journal flush failed: \(error)")
                    throw error
                }
                advanceDurable(to: reached)
            }
        } catch {
            wake.signal()  // let the flusher repair
            throw error
        }
    }

    /// Writes the records in `[start, end)` again, copied from the mapping, so
    /// that the next flush covers them whatever a failed one left behind.
    /// Throws ``LostJournalBytes`` if any record there is not intact (the kernel
    /// dropped the page): then nothing after it can be made durable.
    private func rewriteUnflushed(from start: UInt64, to end: UInt64) throws {
        var position = start
        var runStart = start
        var copy = [UInt8](repeating: 0, count: 1 << 20)
        func writeRun(to runEnd: UInt64) throws {
            var at = runStart
            while at < runEnd {
                let count = Int(min(UInt64(copy.count), runEnd - at))
                ring.withMappedBytes(physical: ring.physical(at), count: count) { bytes in
                    copy.withUnsafeMutableBytes { $0.copyMemory(from: bytes) }
                }
                try copy.withUnsafeBytes { try ring.write(UnsafeRawBufferPointer(rebasing: $0[0..<count]), at: at) }
                at += UInt64(count)
            }
        }
        while position < end {
            let toEnd = ring.bytesToEnd(from: position)
            if toEnd < UInt64(JournalRecord.paddingSize) {
                try writeRun(to: position)
                position += toEnd
                runStart = position
                continue
            }
            let here = position
            let inspection = ring.withMappedBytes(physical: ring.physical(here), count: Int(toEnd)) {
                JournalRecord.inspect($0, expectedPosition: here)
            }
            switch inspection {
            case .event(let header) where header.epoch == epoch:
                position += UInt64(header.length)
            case .padding(let length, let recordEpoch) where recordEpoch == epoch:
                try writeRun(to: position + UInt64(JournalRecord.paddingSize))  // only the padding header was ever written
                position += UInt64(length)
                runStart = position
            default:
                throw LostJournalBytes(error: RingstoreError(
                    .storeFailed,
                    "after a failed journal flush, the unflushed record at position \(here) could not be read back intact, so it cannot be written again; reopen the store",
                    path: ring.file.path.string, offset: RingFile.headerAreaSize + ring.physical(here)))
            }
        }
        try writeRun(to: position)
    }

    /// Moves the durable cursor forward to `target` (never backward: the flusher
    /// and `flush()` may both sync).
    private func advanceDurable(to target: UInt64) {
        var current = durable.load(ordering: .relaxed)
        while current < target {
            let (exchanged, original) = durable.compareExchange(expected: current, desired: target, ordering: .acquiringAndReleasing)
            if exchanged { break }
            current = original
        }
        flushCount.add(1, ordering: .relaxed)
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
