import Synchronization

/// What a paced checkpoint's writing needs from the splitter's loop.
struct CheckpointPace: Sendable {
    /// The journal's recent pace (``CheckpointPolicy/Pace``).
    var bytesPerSecond: Double
    /// ``JournalWriter/journalFullWaits`` when the writing began: once it moves,
    /// an append has waited for ring space, and the writing pauses no more.
    var journalFullWaits: UInt64
    /// The end of the reserved ring space, and the monotonic time, when the
    /// writing began: the journal's pace since then (see
    /// ``CheckpointPolicy/journalPace(estimate:reservedSince:nanosecondsSince:)``).
    var reservedAtStart: UInt64
    var startNanoseconds: Int64
}

/// Pausing between slices of a checkpoint's writing (see `CheckpointPacing`
/// for why and when).
extension Splitter {
    /// The pace for a checkpoint's writing that the loop is about to start, or
    /// nil for one that must not pause (a close's).
    func checkpointPace(bytesPerSecond: Double, stopping: Bool) -> CheckpointPace? {
        guard pacing, !stopping else { return nil }
        return CheckpointPace(bytesPerSecond: bytesPerSecond,
                              journalFullWaits: journal.writer.journalFullWaits.load(ordering: .relaxed),
                              reservedAtStart: journal.spaceInUse.reserved, startNanoseconds: monotonicNanoseconds())
    }

    /// After a unit of a checkpoint's work: pauses if a slice is done and
    /// ``CheckpointPolicy/mayPause(_:)`` allows. The pause is a timed wait on
    /// the splitter's doorbell, not `sched_yield` (which gives the processor to
    /// any runnable thread, another process's too, and so slowed the split on a
    /// busy machine until the ring filled); it ends early for a reader's request
    /// or a close. Returns whether it paused.
    @discardableResult
    func pauseBetweenSlices(_ pacer: inout CheckpointPolicy.Pacer, _ pace: CheckpointPace) -> Bool {
        let start = monotonicNanoseconds()
        let length = pacer.pause(now: start) { paused in
            let (reserved, checkpoint) = journal.spaceInUse
            let bytesPerSecond = CheckpointPolicy.journalPace(
                estimate: pace.bytesPerSecond, reservedSince: reserved &- pace.reservedAtStart,
                nanosecondsSince: start - pace.startNanoseconds)
            return CheckpointPolicy.PauseCheck(
                stopping: isStopping, appendsWaitedForSpace: journal.writer.journalFullWaits.load(ordering: .relaxed) != pace.journalFullWaits,
                reserved: reserved, checkpoint: checkpoint, capacity: journal.ring.capacity,
                bytesPerSecond: bytesPerSecond, pausedNanoseconds: paused)
        }
        guard length > 0 else { return false }
        let until = start + length
        var now = start
        // The flusher rings the doorbell as appends are acknowledged: sleep again
        // until the pause is over, unless a reader or a close is waiting.
        while now < until, !readers.hasRequests.load(ordering: .acquiring), !isStopping {
            splitterDoorbell.wait(timeoutNanoseconds: until - now) { !readers.hasRequests.load(ordering: .acquiring) }
            now = monotonicNanoseconds()
        }
        pacer.paused(from: start, to: now)
        pacedPauses.add(1, ordering: .relaxed)
        return true
    }

    /// A close or an abandon was asked for (the loop's retry wait and the pauses end then).
    var isStopping: Bool { control.withLock { $0.stopping || $0.abandoning } }
}
