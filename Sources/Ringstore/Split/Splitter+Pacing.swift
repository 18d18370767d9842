import Synchronization

/// What a paced checkpoint's writing needs from the splitter's loop.
struct CheckpointPace: Sendable {
    /// The journal's recent pace: the scan's (``CheckpointPolicy/Pace``), or for
    /// a checkpoint paced for the device the reservations' over the last few
    /// checkpoints (``SplitWritePace/Rates/journalBytesPerSecond``).
    var bytesPerSecond: Double
    /// ``JournalWriter/journalFullWaits`` when the writing began: once it moves,
    /// an append has waited for ring space, and the writing pauses no more.
    var journalFullWaits: UInt64
    /// The end of the reserved ring space, and the monotonic time, when the
    /// writing began: the journal's pace since then (see
    /// ``CheckpointPolicy/journalPace(estimate:reservedSince:nanosecondsSince:)``).
    var reservedAtStart: UInt64
    var startNanoseconds: Int64
    /// Pauses after slices of processor time (`Configuration.checkpointPacing`).
    var slices: Bool
    /// The pace of the segment writes on a device whose journal syncs stall
    /// (``SplitWritePace``), in bytes a second; nil: as fast as they are built.
    var segmentBytesPerSecond: Double?
}

/// Pausing between slices of a checkpoint's writing (see `CheckpointPacing`
/// for why and when).
extension Splitter {
    /// The pace for a checkpoint's writing that the loop is about to start, or
    /// nil for one that must not pause (a close's) or that neither kind of
    /// pacing applies to.
    func checkpointPace(bytesPerSecond: Double, segmentBytesPerSecond: Double?, stopping: Bool) -> CheckpointPace? {
        guard pacing || segmentBytesPerSecond != nil, !stopping else { return nil }
        return CheckpointPace(bytesPerSecond: bytesPerSecond,
                              journalFullWaits: journal.writer.journalFullWaits.load(ordering: .relaxed),
                              reservedAtStart: journal.spaceInUse.reserved, startNanoseconds: monotonicNanoseconds(),
                              slices: pacing, segmentBytesPerSecond: segmentBytesPerSecond)
    }

    /// What ``CheckpointPolicy/mayPause(_:budget:headroom:)`` weighs at `now`,
    /// `paused` having been paused so far in this checkpoint.
    private func pauseCheck(_ pace: CheckpointPace, now: Int64, paused: Int64) -> CheckpointPolicy.PauseCheck {
        let (reserved, checkpoint) = journal.spaceInUse
        let bytesPerSecond = CheckpointPolicy.journalPace(
            estimate: pace.bytesPerSecond, reservedSince: reserved &- pace.reservedAtStart,
            nanosecondsSince: now - pace.startNanoseconds)
        return CheckpointPolicy.PauseCheck(
            stopping: isStopping, appendsWaitedForSpace: journal.writer.journalFullWaits.load(ordering: .relaxed) != pace.journalFullWaits,
            reserved: reserved, checkpoint: checkpoint, capacity: journal.ring.capacity,
            bytesPerSecond: bytesPerSecond, pausedNanoseconds: paused)
    }

    /// After a segment write of a checkpoint paced for the device: pauses
    /// until the bytes written are due at the pace, if
    /// ``CheckpointPolicy/mayPause(_:budget:headroom:)`` allows (see
    /// ``SplitWritePace``). Returns whether it paused.
    @discardableResult
    func pauseForDevice(_ pacer: inout SplitWritePace.Pacer, _ pace: CheckpointPace) -> Bool {
        let start = monotonicNanoseconds()
        let length = pacer.pause(now: start, bytes: split.segments.bytesWritten.load(ordering: .relaxed)) { paused in
            pauseCheck(pace, now: start, paused: paused)
        }
        guard length > 0 else { return false }
        let end = sleepPaused(from: start, until: start + length)
        pacer.paused(from: start, to: end)
        segmentPacedNanoseconds.add(UInt64(max(0, end - start)), ordering: .relaxed)
        return true
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
        let length = pacer.pause(now: start) { paused in pauseCheck(pace, now: start, paused: paused) }
        guard length > 0 else { return false }
        pacer.paused(from: start, to: sleepPaused(from: start, until: start + length))
        pacedPauses.add(1, ordering: .relaxed)
        return true
    }

    /// Sleeps on the doorbell from `start` until `until`, or until a reader or
    /// a close is waiting; returns when it woke for good.
    private func sleepPaused(from start: Int64, until: Int64) -> Int64 {
        var now = start
        // The flusher rings the doorbell as appends are acknowledged: sleep again
        // until the pause is over, unless a reader or a close is waiting.
        while now < until, !readers.hasRequests.load(ordering: .acquiring), !isStopping {
            splitterDoorbell.wait(timeoutNanoseconds: until - now) { !readers.hasRequests.load(ordering: .acquiring) }
            now = monotonicNanoseconds()
        }
        return now
    }

    /// A close or an abandon was asked for (the loop's retry wait and the pauses end then).
    var isStopping: Bool { control.withLock { $0.stopping || $0.abandoning } }
}
