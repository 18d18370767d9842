import Synchronization

/// The one owner of every `fdatasync` of the ring's descriptor — the flusher's,
/// the splitter's and `flush()`'s, the recovery sync at open and each header
/// write — and of what a failed one obliges: the written and durable cursors,
/// the pending rewrite, and the records found lost.
///
/// Why one owner: Linux reports a writeback error once per open file. Whichever
/// `fdatasync` of the descriptor comes first after the kernel failed to write
/// some pages gets the error (and the pages may have been marked clean without
/// being written); every later one returns 0. So a failure seen by any caller —
/// a header write included — must be recorded before the next sync can start,
/// and that next sync, whoever makes it, must first write the unflushed range
/// `[durable, written)` again, copied out of the mapping, before it may move the
/// durable cursor. All syncs run under one lock for that reason.
///
/// If a record in that range can no longer be read back intact (the kernel
/// dropped the page and what is there now is something else), nothing after
/// it can ever be made durable: that is recorded as ``lost``, and every later
/// sync fails with it (the writer then refuses appends until a reopen).
final class RingSync: Sendable {
    let ring: RingFile
    /// The session whose records the rewrite checks for.
    let epoch: UInt32
    /// Records `pwrite`n into the ring (the page cache) end here. Only the flusher moves it.
    let written: Atomic<UInt64>
    /// Records flushed to stable storage end here. Only a successful sync moves it, never backward.
    let durable: Atomic<UInt64>
    /// Times the unflushed range was written again after a failed sync (tests).
    let rewriteCount = Atomic<UInt64>(0)

    private struct State {
        /// A sync failed: the unflushed range must be written again before a sync may count.
        var needsRewrite = false
        /// The last sync failure, until a sync succeeds.
        var lastError: RingstoreError?
        /// Set for good once unflushed records could not be read back intact.
        var lost: RingstoreError?
    }
    private let state = Mutex(State())
    /// Mirrors `needsRewrite || lost != nil`, so that the flusher can look
    /// without waiting for a sync in progress (a stale answer only moves the
    /// repair to its next pass; a failed sync also wakes it).
    private let repairPending = Atomic<Bool>(false)

    /// `end`: the journal's end as recovery found it (written, and durable once
    /// the first ``sync()`` succeeds).
    init(ring: RingFile, epoch: UInt32, end: UInt64) {
        self.ring = ring
        self.epoch = epoch
        self.written = Atomic(end)
        self.durable = Atomic(end)
    }

    /// The last sync failure, if no sync has succeeded since.
    var lastError: RingstoreError? { state.withLock { $0.lost ?? $0.lastError } }

    /// The unflushed records could not be read back intact: nothing more can be made durable.
    var lost: RingstoreError? { state.withLock { $0.lost } }

    /// A sync failed and none has succeeded since (the next one writes the unflushed range again).
    var needsRepair: Bool { repairPending.load(ordering: .acquiring) }

    /// Makes everything written so far durable and moves the durable cursor
    /// there — after writing the unflushed range again if an earlier sync failed.
    func sync() throws {
        try state.withLock { s throws(RingstoreError) in try syncLocked(&s, header: nil) }
    }

    /// Writes a header slot at `offset` within the header area and makes it
    /// durable with one sync of the ring, which counts for the ring's records as
    /// any other does.
    func writeHeader(_ bytes: [UInt8], at offset: UInt64) throws {
        try state.withLock { s throws(RingstoreError) in try syncLocked(&s, header: (bytes, offset)) }
    }

    private func syncLocked(_ s: inout State, header: (bytes: [UInt8], offset: UInt64)?) throws(RingstoreError) {
        if let lost = s.lost { throw lost }
        let target = written.load(ordering: .acquiring)
        if s.needsRewrite {
            do {
                try rewriteUnflushed(from: durable.load(ordering: .acquiring), to: target)
            } catch let error {
                if case .lost(let lost) = error {
                    s.lost = lost
                    repairPending.store(true, ordering: .releasing)
                }
                throw error.error
            }
            rewriteCount.add(1, ordering: .relaxed)
        }
        if let header {
            // A failed write of the slot says nothing about the ring's pages: only a failed sync does.
            do { try ring.writeHeaderSlot(header.bytes, at: header.offset) } catch { throw Self.ringstoreError(error) }
        }
        do {
            try ring.sync()
        } catch {
            s.needsRewrite = true
            s.lastError = Self.ringstoreError(error)
            repairPending.store(true, ordering: .releasing)
            throw s.lastError!
        }
        s.needsRewrite = false
        s.lastError = nil
        repairPending.store(false, ordering: .releasing)
        advanceDurable(to: target)
    }

    private static func ringstoreError(_ error: any Error) -> RingstoreError {
        error as? RingstoreError ?? RingstoreError(.ioError, "journal flush failed: \(error)")
    }

    /// Moves the durable cursor forward to `target` (never backward).
    private func advanceDurable(to target: UInt64) {
        var current = durable.load(ordering: .relaxed)
        while current < target {
            let (exchanged, original) = durable.compareExchange(expected: current, desired: target, ordering: .acquiringAndReleasing)
            if exchanged { break }
            current = original
        }
    }

    private enum RewriteError: Error {
        /// A write failed: the rewrite is still owed.
        case io(RingstoreError)
        /// A record there is not intact: nothing from it on can be made durable.
        case lost(RingstoreError)

        var error: RingstoreError {
            switch self {
            case .io(let error), .lost(let error): error
            }
        }
    }

    /// Writes the records in `[start, end)` again, copied from the mapping, so
    /// that the next sync covers them whatever a failed one left behind.
    private func rewriteUnflushed(from start: UInt64, to end: UInt64) throws(RewriteError) {
        var position = start
        var runStart = start
        var copy = [UInt8](repeating: 0, count: 1 << 20)
        func writeRun(to runEnd: UInt64) throws(RewriteError) {
            var at = runStart
            while at < runEnd {
                let count = Int(min(UInt64(copy.count), runEnd - at))
                ring.withMappedBytes(physical: ring.physical(at), count: count) { bytes in
                    copy.withUnsafeMutableBytes { $0.copyMemory(from: bytes) }
                }
                do {
                    try copy.withUnsafeBytes { try ring.write(UnsafeRawBufferPointer(rebasing: $0[0..<count]), at: at) }
                } catch {
                    throw .io(Self.ringstoreError(error))
                }
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
                throw .lost(RingstoreError(
                    .storeFailed,
                    "after a failed journal flush, the unflushed record at position \(here) could not be read back intact, so it cannot be written again; reopen the store",
                    path: ring.file.path.string, offset: RingFile.headerAreaSize + ring.physical(here)))
            }
        }
        try writeRun(to: position)
    }
}
