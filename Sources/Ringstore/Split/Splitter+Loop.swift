#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Synchronization

/// The splitter thread's loop: scan, serve readers, write ahead when writers
/// are short of space, checkpoint when one is due, retry after a failure.
extension Splitter {
    func run() {
        var pending = Pending(scanned: readers.splitPosition.load(ordering: .acquiring))
        var lastCheckpoint = monotonicNanoseconds()
        var lastScanned = lastCheckpoint  // when the scan last found new records
        var pace = CheckpointPolicy.Pace(now: lastCheckpoint, scanned: pending.scanned)
        var consecutiveFailures = 0
        var reportingFailure = false
        var heldBySegments = false  // a due checkpoint waits for the segment mover
        var writePace = SplitWritePace()
        while true {
            let (stopping, paused, abandoning) = control.withLock { ($0.stopping, $0.paused, $0.abandoning) }
            if abandoning {
                finish(failure: nil)
                return
            }
            do {
                if paused {
                    splitterDoorbell.wait(timeoutNanoseconds: 5_000_000) { true }
                    continue
                }
                var worked = try scan(&pending)
                let scanned = monotonicNanoseconds()
                if worked { lastScanned = scanned }
                pace.update(now: scanned, scanned: pending.scanned, found: worked)
                worked = try serveRequests(&pending) || worked
                let (reserved, checkpoint) = journal.spaceInUse
                let caughtUp = pending.scanned >= acknowledged
                let busy = checkpointer.isBusy
                if stopping, busy, let failure = checkpointer.failureBetweenAttempts {
                    finish(failure: failure)  // the final checkpoint cannot be written
                    return
                }
                let now = monotonicNanoseconds()
                let pass = CheckpointPolicy.Pass(
                    scanned: pending.scanned, checkpoint: checkpoint, reserved: reserved, capacity: journal.ring.capacity,
                    pendingStreams: pending.streams.count, bytesPerSecond: pace.bytesPerSecond,
                    nanosecondsSinceScan: now - lastScanned, nanosecondsSinceCheckpoint: now - lastCheckpoint,
                    stopping: stopping, caughtUp: caughtUp,
                    forced: testing.checkpointWanted(scanned: pending.scanned, checkpoint: checkpoint),
                    checkpointerBusy: busy, segmentsHoldCheckpoints: mover.holdsCheckpoints)
                let held = CheckpointPolicy.heldBySegments(pass) && CheckpointPolicy.wanted(pass)
                if held && !heldBySegments { segmentHolds.add(1, ordering: .relaxed) }
                heldBySegments = held
                let due = CheckpointPolicy.isDue(pass)
                    && (pass.forced || stopping || !testing.checkpointsHeld.load(ordering: .relaxed))
                if CheckpointPolicy.writeAhead(pass, passDidWork: worked) {
                    try writePending(&pending)
                    worked = true
                }
                if due {
                    let segmentPace = writePace.checkpointBegins(
                        now: monotonicNanoseconds(), segmentBytes: split.segments.bytesWritten.load(ordering: .relaxed),
                        reserved: journal.spaceInUse.reserved, journalStalls: journal.writer.syncStalls.load(ordering: .relaxed))
                    let devicePace = SplitWritePace.applied(segmentPace, forced: pass.forced,
                                                            segmentsOverBudget: mover.segmentsOverBudget)
                    if devicePace != nil { segmentPacedCheckpoints.add(1, ordering: .relaxed) }
                    try writeCheckpoint(&pending, pace: checkpointPace(bytesPerSecond: devicePace?.journalBytesPerSecond ?? pace.bytesPerSecond,
                                                                       segmentBytesPerSecond: devicePace?.segmentBytesPerSecond,
                                                                       stopping: stopping))
                    lastCheckpoint = monotonicNanoseconds()
                    worked = true
                }
                consecutiveFailures = 0
                HeapTrim.trimIfGrown()  // free heap memory back to the system, after growth
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
                    splitterDoorbell.wait(timeoutNanoseconds: idleTimeout) { pending.scanned >= testing.scanEnd(acknowledged) && !readers.hasRequests.load(ordering: .acquiring) }
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
                      !isStopping {
                    splitterDoorbell.wait(timeoutNanoseconds: until - now) { true }
                }
            }
        }
    }

    private func finish(failure: RingstoreError?) {
        let waiters = control.withLock { c in
            if let failure { c.failure = failure }
            return c.stop.finish()
        }
        for waiter in waiters { waiter.resume() }
        testing.resumeAll()
    }
}
