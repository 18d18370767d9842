/// The share of the time the segment mover may spend on I/O, learnt from the
/// journal: halved after a batch during which a journal sync stalled, grown
/// by a step after each batch during which none did (additive increase,
/// multiplicative decrease, as TCP's congestion window).
///
/// Why: on a device that serves few writes a second (an SD card: 1,000) the
/// journal's flushes alone use most of them at full ingest, and whatever the
/// mover sends beyond what is left queues in front of the next flush (the
/// device's throttle holds it back: appends stalled 0.4-0.6 s once the mover
/// started). A fixed share of the time does not keep the mover's writes per
/// second under what is left; the journal's own stalls (a sync at least 20 ms
/// long and four times the usual, ``GroupCommitPolicy``) say when it is over.
/// On a fast disk the journal does not stall and the share stays at its
/// maximum.
///
/// Pure value logic, tested without threads or a disk.
struct MoverShare: Sendable, Equatable {
    /// The share after a batch without a journal stall, at most.
    let maximum: Double
    /// The share never falls below this: the segments must still drain.
    let minimum: Double
    /// Added after each batch without a journal stall.
    let step: Double
    /// The share now.
    private(set) var current: Double

    init(maximum: Double, minimum: Double, step: Double) {
        self.maximum = max(0.001, min(1, maximum))
        self.minimum = max(0.001, min(self.maximum, minimum))
        self.step = max(0, step)
        current = self.maximum
    }

    /// Records a batch; `journalStalled`: a journal sync stalled while it ran.
    mutating func batchEnded(journalStalled: Bool) {
        current = journalStalled ? max(minimum, current / 2) : min(maximum, current + step)
    }

    /// How long to pause after a batch that was busy for `busyNanoseconds`, so
    /// that the mover's share of the time is ``current`` (at most a second).
    func pauseNanoseconds(afterBusy busyNanoseconds: Int64) -> Int64 {
        Int64(min(1e9, Double(max(0, busyNanoseconds)) * (1 / current - 1)))
    }
}
