import Testing
@testable import Ringstore

/// When a checkpoint falls due, as a table: no store, no thread, no clock.
@Suite struct CheckpointPolicyTests {
    static let capacity: UInt64 = 64 << 20

    /// A pass where nothing makes a checkpoint due: a little scanned, the ring
    /// mostly free, the journal busy, the last checkpoint recent.
    static let calm = CheckpointPolicy.Pass(
        scanned: 1 << 20, checkpoint: 0, reserved: 2 << 20, capacity: capacity,
        pendingStreams: 10, bytesPerSecond: 8 * 1_048_576,
        nanosecondsSinceScan: 1_000_000, nanosecondsSinceCheckpoint: 1_000_000_000,
        stopping: false, caughtUp: false, forced: false, checkpointerBusy: false)

    static func with(_ change: (inout CheckpointPolicy.Pass) -> Void) -> CheckpointPolicy.Pass {
        var pass = calm
        change(&pass)
        return pass
    }

    @Test(arguments: [
        ("nothing calls for one", with { _ in }, false),
        ("a quarter of the ring scanned", with { $0.scanned = capacity / 4 }, true),
        ("writers short of space", with { $0.reserved = capacity / 2 }, true),
        ("the journal quiet for a second", with { $0.nanosecondsSinceScan = 1_000_000_000 }, true),
        ("ten seconds since the last one", with { $0.nanosecondsSinceCheckpoint = 10_000_000_000 }, true),
        ("closing, caught up", with { $0.stopping = true; $0.caughtUp = true }, true),
        ("closing, not caught up", with { $0.stopping = true }, false),
        ("a test asks", with { $0.forced = true }, true),
        ("the previous one still syncing", with { $0.forced = true; $0.checkpointerBusy = true }, false),
        ("nothing scanned since the checkpoint", with { $0.forced = true; $0.checkpoint = $0.scanned }, false),
        ("a quarter scanned, the segments past their limit", with { $0.scanned = capacity / 4; $0.segmentsHoldCheckpoints = true }, false),
        ("writers short of space, the segments past their limit", with { $0.reserved = capacity; $0.segmentsHoldCheckpoints = true }, false),
        ("closing, caught up, the segments past their limit", with { $0.stopping = true; $0.caughtUp = true; $0.segmentsHoldCheckpoints = true }, true),
        ("a test asks, the segments past their limit", with { $0.forced = true; $0.segmentsHoldCheckpoints = true }, true),
    ])
    func aCheckpointIsDue(_ what: String, _ pass: CheckpointPolicy.Pass, _ due: Bool) {
        #expect(CheckpointPolicy.isDue(pass) == due, "\(what)")
    }

    /// Pending records are written ahead of a checkpoint only while writers wait
    /// for space, the previous checkpoint is syncing and the pass had nothing else to do.
    @Test func pendingRecordsAreWrittenAheadOnlyWhileWritersWait() {
        let short = Self.with { $0.reserved = Self.capacity / 2; $0.checkpointerBusy = true }
        #expect(CheckpointPolicy.writeAhead(short, passDidWork: false))
        #expect(!CheckpointPolicy.writeAhead(short, passDidWork: true))
        #expect(!CheckpointPolicy.writeAhead(Self.with { $0.checkpointerBusy = true }, passDidWork: false))
        #expect(!CheckpointPolicy.writeAhead(Self.with { $0.reserved = Self.capacity / 2 }, passDidWork: false))
        #expect(!CheckpointPolicy.writeAhead(Self.with { $0.reserved = Self.capacity / 2; $0.checkpointerBusy = true; $0.pendingStreams = 0 },
                                             passDidWork: false))
        #expect(!CheckpointPolicy.writeAhead(Self.with { $0.reserved = Self.capacity / 2; $0.checkpointerBusy = true; $0.segmentsHoldCheckpoints = true },
                                             passDidWork: false), "no checkpoint would follow while the segments hold them back")
    }

    /// The pace is measured over windows of at least 100 ms and drops to 0 after a quiet second.
    @Test func thePaceFollowsTheScan() {
        var pace = CheckpointPolicy.Pace(now: 0, scanned: 0)
        pace.update(now: 50_000_000, scanned: 1 << 20, found: true)
        #expect(pace.bytesPerSecond == 0, "a window shorter than 100 ms is not measured")
        pace.update(now: 500_000_000, scanned: 1 << 20, found: true)
        #expect(pace.bytesPerSecond == 2 * 1_048_576)
        pace.update(now: 1_000_000_000, scanned: 1 << 20, found: false)
        #expect(pace.bytesPerSecond == 2 * 1_048_576, "less than a second without records")
        pace.update(now: 1_500_000_000, scanned: 1 << 20, found: false)
        #expect(pace.bytesPerSecond == 0)
    }
}

/// When the splitter pauses between slices of a checkpoint's writing, as a
/// table, and the pacer's slices driven by a made-up clock: no store, no sleep.
@Suite struct CheckpointPacingTests {
    static let capacity: UInt64 = 64 << 20

    /// Half of peak load on the default ring: the checkpoint starts with about
    /// half the ring in use, the journal filling it at 27 MB/s.
    static let halfLoad = CheckpointPolicy.PauseCheck(
        stopping: false, appendsWaitedForSpace: false,
        reserved: 100 << 20, checkpoint: (100 << 20) - 30_000_000, capacity: capacity,
        bytesPerSecond: 27_000_000, pausedNanoseconds: 0)

    static func with(_ change: (inout CheckpointPolicy.PauseCheck) -> Void) -> CheckpointPolicy.PauseCheck {
        var check = halfLoad
        change(&check)
        return check
    }

    @Test(arguments: [
        ("half of peak load, ample room", with { _ in }, true),
        ("the journal quiet", with { $0.bytesPerSecond = 0; $0.checkpoint = $0.reserved - (1 << 20) }, true),
        ("closing", with { $0.stopping = true }, false),
        ("an append waited for ring space", with { $0.appendsWaitedForSpace = true }, false),
        ("less than a quarter of the ring free", with { $0.bytesPerSecond = 0; $0.checkpoint = $0.reserved - (49 << 20) }, false),
        ("the free space lasts under four times the pauses allowed (a second)", with { $0.bytesPerSecond = 40_000_000 }, false),
        ("the same, most of the budget paused", with { $0.bytesPerSecond = 40_000_000; $0.pausedNanoseconds = 200_000_000 }, true),
        ("full load: a quarter in use, filling at 55 MB/s", with { $0.checkpoint = $0.reserved - (16 << 20); $0.bytesPerSecond = 55_000_000 }, false),
        ("the pause budget spent", with { $0.pausedNanoseconds = CheckpointPolicy.maxPauseNanoseconds }, false),
        ("the ring over-full (cannot happen; no wrap-around)", with { $0.checkpoint = $0.reserved - capacity - 1; $0.bytesPerSecond = 0 }, false),
    ])
    func theSplitterMayPause(_ what: String, _ check: CheckpointPolicy.PauseCheck, _ may: Bool) {
        #expect(CheckpointPolicy.mayPause(check) == may, "\(what)")
    }

    /// A journal that sped up since the checkpoint's writing began counts at its
    /// new pace: a stale low estimate must not let the splitter pause while the
    /// writers fill the ring.
    @Test func theJournalsPaceSinceTheWritingBeganOutweighsAStaleEstimate() {
        let ms: Int64 = 1_000_000
        #expect(CheckpointPolicy.journalPace(estimate: 27e6, reservedSince: 10_000, nanosecondsSince: ms / 2) == 27e6,
                "under a millisecond: too short to tell")
        #expect(CheckpointPolicy.journalPace(estimate: 27e6, reservedSince: 2_500_000, nanosecondsSince: 10 * ms) == 250e6)
        #expect(CheckpointPolicy.journalPace(estimate: 27e6, reservedSince: 100_000, nanosecondsSince: 10 * ms) == 27e6,
                "slower since: the estimate stands")
        // 100-event appends after a quiet spell: a stale estimate alone would pause.
        let stale = Self.with { $0.bytesPerSecond = 1_000_000 }
        #expect(CheckpointPolicy.mayPause(stale))
        let live = Self.with {
            $0.bytesPerSecond = CheckpointPolicy.journalPace(estimate: 1_000_000, reservedSince: 2_500_000, nanosecondsSince: 10 * ms)
        }
        #expect(!CheckpointPolicy.mayPause(live))
    }

    /// A pause comes once a slice's worth of work is done, as long as the slice
    /// took (within twice a slice), and the pacer counts what was paused.
    @Test func pausesFollowSlicesOfWork() {
        let slice = CheckpointPolicy.paceSliceNanoseconds
        var pacer = CheckpointPolicy.Pacer(now: 0, on: true)
        #expect(pacer.pause(now: slice / 2) { _ in Self.halfLoad } == 0, "half a slice: go on working")
        var asked: [Int64] = []
        let length = pacer.pause(now: slice + 100) { paused in asked.append(paused); return Self.halfLoad }
        #expect(length == slice + 100)
        #expect(asked == [0], "the policy is asked only when a pause is due, with what was paused so far")
        pacer.paused(from: slice + 100, to: 2 * slice + 200)
        #expect(pacer.pausedNanoseconds == slice + 100 && pacer.pauses == 1)
        #expect(pacer.pause(now: 2 * slice + 300) { _ in Self.halfLoad } == 0, "a new slice starts when the pause ends")
        #expect(pacer.pause(now: 12 * slice) { _ in Self.halfLoad } == 2 * slice, "a long slice (preempted) pauses at most twice a slice")
    }

    /// Once the policy says no (here: an append waited for ring space, then on
    /// close), the rest of that checkpoint is written without a pause, even if
    /// the pressure is gone at the next slice.
    @Test(arguments: [
        ("an append waited for ring space", with { $0.appendsWaitedForSpace = true }),
        ("closing", with { $0.stopping = true }),
        ("the ring filling", with { $0.bytesPerSecond = 60_000_000 }),
    ])
    func pacingSwitchesOffForTheRestOfTheCheckpoint(_ what: String, _ pressure: CheckpointPolicy.PauseCheck) {
        let slice = CheckpointPolicy.paceSliceNanoseconds
        var pacer = CheckpointPolicy.Pacer(now: 0, on: true)
        #expect(pacer.pause(now: slice) { _ in Self.halfLoad } == slice)
        pacer.paused(from: slice, to: 2 * slice)
        #expect(pacer.pause(now: 3 * slice) { _ in pressure } == 0, "\(what)")
        #expect(!pacer.on)
        var asked = false
        #expect(pacer.pause(now: 10 * slice) { _ in asked = true; return Self.halfLoad } == 0, "\(what)")
        #expect(!asked, "an off pacer asks nothing")
    }

    /// The pauses of one checkpoint add up to the budget at most: the last is cut short.
    @Test func thePausesStayWithinTheBudget() {
        let slice = CheckpointPolicy.paceSliceNanoseconds
        var pacer = CheckpointPolicy.Pacer(now: 0, on: true)
        let total = takePausesUntilRefused(
            pause: { now in pacer.pause(now: now) { paused in Self.with { $0.pausedNanoseconds = paused } } },
            paused: { pacer.paused(from: $0, to: $1) }, workBetween: 2 * slice)
        #expect(total == CheckpointPolicy.maxPauseNanoseconds)
        #expect(!pacer.on)
    }

    /// A writing that must not pause (a close's, or pacing turned off) never does.
    @Test func aPacerStartedOffNeverPauses() {
        var pacer = CheckpointPolicy.Pacer(now: 0, on: false)
        #expect(pacer.pause(now: 1_000_000_000) { _ in Self.halfLoad } == 0)
    }
}

/// Drives a pacer under a made-up clock: after `workBetween` of work asks
/// `pause(now)` for a pause, takes it whole (`paused(from, to)`), and again,
/// until it gives none; returns the pauses' total.
func takePausesUntilRefused(pause: (_ now: Int64) -> Int64, paused: (_ from: Int64, _ to: Int64) -> Void,
                            workBetween: Int64 = 0) -> Int64 {
    var now: Int64 = 0
    var total: Int64 = 0
    while true {
        now += workBetween
        let length = pause(now)
        if length == 0 { return total }
        paused(now, now + length)
        now += length
        total += length
    }
}
