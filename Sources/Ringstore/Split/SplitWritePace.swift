/// Spreading a checkpoint's segment writes over time on a device whose
/// journal syncs stall: when to, and how fast they may go.
///
/// Why: a checkpoint writes its segment entries (about 12 MB every 3.8 s at
/// 28,000 one-event appends a second over 10,000 streams on the SD-card
/// profile) as fast as the splitter builds them, about 100 MB/s. A device
/// that takes 25 MB/s, and lets a burst of a tenth of a second through
/// before it holds writes back (the kernel's throttle does; a card's write
/// cache does much the same), accepts the first few megabytes at once and then
/// holds every later write, the journal's among them, until the burst is paid
/// for: three or four journal syncs in a row took 65-86 ms at every checkpoint
/// (`perf record -e block:block_bio_queue`: the journal's 20 KB write queued
/// behind the segment's, held 77 ms), though the segments never had more than
/// ``SequentialWriteback/inFlightBytes`` unfinished (each write completed at
/// once while the burst lasted, so waiting for completions could not see the
/// debt coming). Bytes per second can: the entries go at one and a half
/// times the pace at which the splitter produced them over the last few
/// checkpoints, so a checkpoint's writes take about two thirds of the time to
/// the next one, and the device never sees a burst.
///
/// When: only after the journal's syncs stalled (``GroupCommitPolicy``: a sync
/// of 20 ms or more and four times the usual), for the next
/// ``pacedCheckpoints`` checkpoints, renewed by every stall, and not while
/// the segments exceed their budget (``applied(_:forced:segmentsOverBudget:)``).
/// On a device that keeps up the checkpoint goes at full speed (on the working
/// disk, 100-event appends are bound by the split). And a pause is taken only while
/// ``CheckpointPolicy/mayPause(_:budget:headroom:)`` allows it with
/// ``pauseBudgetNanoseconds``: never on close or while writers are short of
/// ring space.
///
/// A pure value, owned by the splitter's loop; tested with made-up clocks.
struct SplitWritePace: Sendable {
    /// How many checkpoints after one during whose interval the journal stalled are paced.
    static let pacedCheckpoints = 8
    /// The pace, as a multiple of what the splitter produced per second over
    /// the last few checkpoints: a checkpoint's writes then take about two
    /// thirds of the time to the next one.
    static let spreadFactor = 1.5
    /// Never slower than this (bytes a second): an idle spell does not make the next checkpoint crawl.
    static let minimumBytesPerSecond = 4.0 * 1_048_576
    /// The pauses of one checkpoint add up to at most this.
    static let pauseBudgetNanoseconds: Int64 = 2_000_000_000
    /// One pause lasts at most this, so that the ring's room is weighed again
    /// at least this often (only a reader's request or a close ends a pause
    /// early; an append starting to wait for ring space does not).
    static let longestPauseNanoseconds: Int64 = 50_000_000
    /// The free ring space must last, at the journal's pace, this many times the
    /// pauses still allowed (see ``CheckpointPolicy/mayPause(_:budget:headroom:)``,
    /// which also stops them once less than a quarter of the ring is free): at
    /// 29,000 one-event appends a second (9-10 MB/s into the ring) a checkpoint
    /// starts with about 30 MB of the 64 MiB ring in use, and its free 34-37 MB
    /// last about twice the budget; the pauses end with about half the ring free.
    static let pauseHeadroomFactor = 1.25

    /// Checkpoints still to be paced (0: not paced).
    private(set) var pacedLeft = 0
    /// The journal's stalled syncs when the last checkpoint began (``JournalWriter/syncStalls``,
    /// which counts from the store's opening).
    private var stallsAtLastStart: UInt64 = 0
    /// When each of the last checkpoints' writing began (monotonic), the
    /// segments' bytes written then, and the end of the ring space reserved by
    /// appends then; oldest first, at most ``windowCheckpoints``.
    private var starts: [(nanoseconds: Int64, segmentBytes: UInt64, reserved: UInt64)] = []
    /// The paces are measured from the oldest of this many checkpoints' starts.
    /// Why more than one: a paced checkpoint that used its whole budget was
    /// followed at once by the next (the ring had filled meanwhile), so
    /// measured from one start to the next the splitter's output alternated
    /// between about 5 and 10 MB/s, and so did the checkpoints' length (2.2 s and 0.8 s).
    static let windowCheckpoints = 4

    /// The paces of a paced checkpoint's writing.
    struct Rates: Sendable, Equatable {
        /// What its segment writes may go at (bytes a second).
        var segmentBytesPerSecond: Double
        /// The journal's pace since the last checkpoint began (bytes a second):
        /// what the pauses are weighed against. Not the scan's pace, which the
        /// pauses themselves distort (after a long pause the scan catches up on
        /// tens of megabytes in a moment).
        var journalBytesPerSecond: Double
    }

    /// The paces for a checkpoint whose writing begins at `now`, the segments
    /// having had `segmentBytes` written so far, appends having reserved the
    /// ring up to `reserved`, and the journal having stalled `journalStalls`
    /// times so far. Nil: write at full speed.
    mutating func checkpointBegins(now: Int64, segmentBytes: UInt64, reserved: UInt64, journalStalls: UInt64) -> Rates? {
        defer {
            if starts.count == Self.windowCheckpoints { starts.removeFirst() }
            starts.append((now, segmentBytes, reserved))
            stallsAtLastStart = journalStalls
        }
        if journalStalls != stallsAtLastStart { pacedLeft = Self.pacedCheckpoints }
        guard pacedLeft > 0, let oldest = starts.first, now > oldest.nanoseconds else { return nil }
        pacedLeft -= 1
        let seconds = Double(now - oldest.nanoseconds) / 1e9
        let produced = Double(segmentBytes &- oldest.segmentBytes) / seconds
        return Rates(segmentBytesPerSecond: max(Self.minimumBytesPerSecond, Self.spreadFactor * produced),
                     journalBytesPerSecond: Double(reserved &- oldest.reserved) / seconds)
    }

    /// The paces a checkpoint's writing gets, given those
    /// ``checkpointBegins(now:segmentBytes:reserved:journalStalls:)`` chose:
    /// none for a test's checkpoint (tests wait for it), nor while the
    /// segments exceed their budget (the mover's sweeps need the device's
    /// spare writes then: with the checkpoints' writes spread over them it
    /// drained less, and over 300 s on the SD-card profile the segments
    /// reached their limit twice, where without pacing they peaked at 407 MiB).
    static func applied(_ rates: Rates?, forced: Bool, segmentsOverBudget: Bool) -> Rates? {
        forced || segmentsOverBudget ? nil : rates
    }

    /// Pauses between a paced checkpoint's segment writes: a pure state
    /// machine fed the monotonic clock and the bytes written.
    struct Pacer: Sendable, Equatable {
        /// When the writing began, and the segments' bytes written then.
        let start: Int64
        let startBytes: UInt64
        /// Bytes a second; nil: not paced.
        let bytesPerSecond: Double?
        /// Paused so far (counted towards ``SplitWritePace/pauseBudgetNanoseconds``).
        private(set) var pausedNanoseconds: Int64 = 0
        /// False once ``CheckpointPolicy/mayPause(_:budget:headroom:)`` said no: the rest goes at full speed.
        private(set) var on: Bool

        init(start: Int64, startBytes: UInt64, bytesPerSecond: Double?) {
            self.start = start
            self.startBytes = startBytes
            self.bytesPerSecond = bytesPerSecond
            on = bytesPerSecond != nil
        }

        /// How long to pause at `now`, the segments' bytes written being
        /// `bytes`: until the bytes written since the start are due at the pace
        /// (at most ``SplitWritePace/longestPauseNanoseconds``, and within what
        /// remains of the budget), if `check` allows it. `check` is called only
        /// when a pause is due, with what was paused so far.
        mutating func pause(now: Int64, bytes: UInt64, check: (Int64) -> CheckpointPolicy.PauseCheck) -> Int64 {
            guard on, let bytesPerSecond else { return 0 }
            let due = start + Int64(Double(bytes &- startBytes) / bytesPerSecond * 1e9)
            guard due > now else { return 0 }
            guard CheckpointPolicy.mayPause(check(pausedNanoseconds), budget: SplitWritePace.pauseBudgetNanoseconds,
                                            headroom: SplitWritePace.pauseHeadroomFactor) else {
                on = false
                return 0
            }
            return min(due - now, SplitWritePace.longestPauseNanoseconds, SplitWritePace.pauseBudgetNanoseconds - pausedNanoseconds)
        }

        /// A pause that lasted from `start` to `end` (it may end early: a reader, a close).
        mutating func paused(from start: Int64, to end: Int64) {
            pausedNanoseconds += max(0, end - start)
        }
    }
}
