/// Spreading the processor time of a checkpoint's block building over time.
///
/// Why: writing a checkpoint's pending records (copying every pending
/// stream's records out of the ring and compressing them) took the splitter
/// 70-115 ms of a processor in one stretch at half of peak load on two cores
/// (10,000 streams), and the journal's threads and the appending tasks that
/// woke meanwhile waited for a processor behind it: most of the worst append
/// latencies fell in those stretches. Pausing after each slice of that work
/// for as long as the slice took leaves a processor to them every other
/// millisecond. The blocks and writes are the same (only their timing
/// changes), so bytes written per payload byte do not change.
///
/// The pauses must never fill the ring: they stop for the rest of the
/// checkpoint as soon as ``CheckpointPolicy/mayPause(_:)`` says no — on close,
/// once an append has waited for ring space, when less than a quarter of the
/// ring is free or the free space would last less than four times the pauses
/// still allowed at the journal's pace, and after 250 ms of pauses in one
/// checkpoint.
extension CheckpointPolicy {
    /// What the splitter knows between two slices of a checkpoint's writing.
    struct PauseCheck: Sendable, Equatable {
        /// A close (or an abandon) asked the splitter to stop.
        var stopping: Bool
        /// An append has waited for ring space since the checkpoint's writing began.
        var appendsWaitedForSpace: Bool
        /// The end of the ring space handed out to appends, the journal's checkpoint, the ring's capacity.
        var reserved: UInt64
        var checkpoint: UInt64
        var capacity: UInt64
        /// The journal's recent pace (see ``Pace``).
        var bytesPerSecond: Double
        /// Paused so far in this checkpoint's writing.
        var pausedNanoseconds: Int64
    }

    /// Work between two pauses (wall-clock time, read from the cheap monotonic
    /// clock): long enough that a pause costs little, short enough that a
    /// thread waiting behind the splitter waits about a millisecond.
    static let paceSliceNanoseconds: Int64 = 1_000_000
    /// Pauses in one checkpoint's writing add up to at most this: whatever
    /// the journal's pace, pacing delays a checkpoint by no more.
    static let maxPauseNanoseconds: Int64 = 250_000_000
    /// The free ring space must last, at the journal's pace, this many times
    /// the pauses still allowed in the checkpoint: pacing may then use at most a
    /// quarter of the time left before the ring would fill. At the start of a
    /// checkpoint that is a second; at full load on two processors (a quarter
    /// of the 64 MiB ring filled in about 0.3 s, the checkpoint starting with a
    /// quarter in use) the free space lasts 0.85 s at most, so pacing stays off;
    /// at half of that load (the checkpoint starting with about 30 MB of 64 MiB
    /// in use, 27 MB/s) it lasts about 1.3 s, so pacing is on, and the margin
    /// grows as the pauses use up their budget.
    static let pauseHeadroomFactor: Double = 4

    /// The journal's pace to weigh a pause against: the larger of the scan's
    /// estimate from before the checkpoint's writing began and what the writers
    /// have reserved since (once a millisecond has passed).
    ///
    /// Why both: the estimate follows the scan, which lags behind a journal
    /// that speeds up (the first checkpoint after a quiet spell, a burst of
    /// large appends). With it alone, 100-event appends from 64 writers
    /// (~250 MB/s into the 64 MiB ring) were seen paused until less than a
    /// quarter of the ring was free, and the writers then waited for space
    /// before the unpaused rest of the checkpoint was written (64 and 320
    /// journal-full waits in two of four runs; none without pacing).
    static func journalPace(estimate: Double, reservedSince: UInt64, nanosecondsSince: Int64) -> Double {
        guard nanosecondsSince >= 1_000_000 else { return estimate }
        return max(estimate, Double(reservedSince) * 1e9 / Double(nanosecondsSince))
    }

    /// Whether the splitter may pause now between two slices of a checkpoint's
    /// writing. Once it says no, the rest of that checkpoint is written without
    /// pauses (see ``Pacer``).
    ///
    /// `budget` and `headroom`: the pauses' budget in one checkpoint and the
    /// headroom factor, ``maxPauseNanoseconds`` and ``pauseHeadroomFactor`` for
    /// the slices of processor time; the device's pace (`SplitWritePace`) has its own.
    static func mayPause(_ check: PauseCheck, budget: Int64 = maxPauseNanoseconds,
                         headroom: Double = pauseHeadroomFactor) -> Bool {
        guard !check.stopping, !check.appendsWaitedForSpace, check.pausedNanoseconds < budget else { return false }
        let used = min(check.capacity, check.reserved &- check.checkpoint)
        let free = check.capacity - used
        guard free >= check.capacity / 4 else { return false }
        let remaining = Double(budget - check.pausedNanoseconds) / 1e9
        return Double(free) >= check.bytesPerSecond * headroom * remaining
    }

    /// When one checkpoint's writing pauses, and for how long: a pure state
    /// machine fed the monotonic clock, so tests drive it without sleeping.
    struct Pacer: Sendable, Equatable {
        /// When the current slice of work began.
        private(set) var sliceStart: Int64
        /// Paused so far (counted towards ``CheckpointPolicy/maxPauseNanoseconds``).
        private(set) var pausedNanoseconds: Int64 = 0
        /// Pauses taken (stats for measurements; tests).
        private(set) var pauses = 0
        /// False once ``CheckpointPolicy/mayPause(_:)`` said no: the rest is written at full speed.
        private(set) var on: Bool

        /// `on` false: a writing that must not pause at all (writers short of
        /// space, a close, pacing turned off).
        init(now: Int64, on: Bool) {
            sliceStart = now
            self.on = on
        }

        /// How long to pause now, after a unit of work ending at `now`: nothing
        /// until a slice of ``CheckpointPolicy/paceSliceNanoseconds`` is done,
        /// then as long as the slice took (at most twice the slice length, and
        /// within what remains of the budget), if `check` allows it.
        /// `check` is called only when a pause is due.
        mutating func pause(now: Int64, check: (Int64) -> PauseCheck) -> Int64 {
            guard on else { return 0 }
            let worked = now - sliceStart
            guard worked >= CheckpointPolicy.paceSliceNanoseconds else { return 0 }
            guard CheckpointPolicy.mayPause(check(pausedNanoseconds)) else {
                on = false
                return 0
            }
            return min(worked, 2 * CheckpointPolicy.paceSliceNanoseconds, CheckpointPolicy.maxPauseNanoseconds - pausedNanoseconds)
        }

        /// A pause that lasted from `start` to `end` (it may end early: a reader, a close).
        mutating func paused(from start: Int64, to end: Int64) {
            pausedNanoseconds += max(0, end - start)
            pauses += 1
            sliceStart = end
        }
    }
}
