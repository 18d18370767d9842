#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Synchronization

/// The splitter thread's loop: scan, serve readers, write ahead when writers
/// are short of space, checkpoint when one is due, retry after a failure.
extension Splitter {
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

    func run() {
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
}
