import Foundation
import Testing
@testable import Ringstore

/// When a checkpoint's segment writes are spread over time, and how fast they
/// go: the pure policy driven by made-up clocks and byte counts.
@Suite struct SplitWritePaceTests {
    static let second: Int64 = 1_000_000_000
    static let mib: UInt64 = 1 << 20

    /// The journal never stalled: every checkpoint goes at full speed.
    @Test func checkpointsGoAtFullSpeedWhileTheJournalDoesNotStall() {
        var pace = SplitWritePace()
        for n in 0..<10 {
            let rates = pace.checkpointBegins(now: Int64(n) * Self.second, segmentBytes: UInt64(n) * 4 * Self.mib,
                                              reserved: UInt64(n) * 10 * Self.mib, journalStalls: 0)
            #expect(rates == nil, "checkpoint \(n)")
        }
        #expect(pace.pacedLeft == 0)
    }

    /// After a stall the next checkpoints are paced at one and a half times what
    /// the splitter produced (and the journal's pace is measured as it was
    /// reserved), for a fixed number of checkpoints unless another stall renews it.
    @Test func aStallPacesTheNextCheckpoints() throws {
        var pace = SplitWritePace()
        _ = pace.checkpointBegins(now: 0, segmentBytes: 0, reserved: 0, journalStalls: 0)
        let begun = pace.checkpointBegins(now: 2 * Self.second, segmentBytes: 8 * Self.mib, reserved: 20 * Self.mib, journalStalls: 1)
        let rates = try #require(begun)
        #expect(rates.segmentBytesPerSecond == 1.5 * 4 * Double(Self.mib))
        #expect(rates.journalBytesPerSecond == 10 * Double(Self.mib))
        var paced = 1
        var now = 2 * Self.second
        var bytes = 8 * Self.mib
        while pace.checkpointBegins(now: now + Self.second, segmentBytes: bytes + 4 * Self.mib, reserved: 0,
                                    journalStalls: 1) != nil {
            paced += 1
            now += Self.second
            bytes += 4 * Self.mib
        }
        #expect(paced == SplitWritePace.pacedCheckpoints)
        #expect(pace.checkpointBegins(now: now + 3 * Self.second, segmentBytes: bytes, reserved: 0, journalStalls: 2) != nil,
                "a new stall paces again")
        #expect(pace.pacedLeft == SplitWritePace.pacedCheckpoints - 1)
    }

    /// The very first checkpoint has nothing to measure the splitter's output
    /// against: it goes at full speed even after a stall.
    @Test func theFirstCheckpointIsNeverPaced() {
        var pace = SplitWritePace()
        #expect(pace.checkpointBegins(now: Self.second, segmentBytes: Self.mib, reserved: Self.mib, journalStalls: 1) == nil)
        #expect(pace.checkpointBegins(now: 2 * Self.second, segmentBytes: 2 * Self.mib, reserved: 2 * Self.mib, journalStalls: 1) != nil)
    }

    /// A test's checkpoint and any while the segments exceed their budget go
    /// at full speed, whatever pace was chosen.
    @Test func neitherATestsCheckpointNorOneWhileTheSegmentsExceedTheirBudgetIsPaced() {
        let rates = SplitWritePace.Rates(segmentBytesPerSecond: 6e6, journalBytesPerSecond: 9e6)
        #expect(SplitWritePace.applied(rates, forced: false, segmentsOverBudget: false) == rates)
        #expect(SplitWritePace.applied(rates, forced: true, segmentsOverBudget: false) == nil)
        #expect(SplitWritePace.applied(rates, forced: false, segmentsOverBudget: true) == nil)
        #expect(SplitWritePace.applied(nil, forced: false, segmentsOverBudget: false) == nil)
    }

    /// Little produced (an idle spell) still leaves a floor, so that the next
    /// busy checkpoint does not crawl.
    @Test func thePaceHasAFloor() throws {
        var pace = SplitWritePace()
        _ = pace.checkpointBegins(now: 0, segmentBytes: 0, reserved: 0, journalStalls: 0)
        let begun = pace.checkpointBegins(now: 10 * Self.second, segmentBytes: 1 << 10, reserved: 1 << 10, journalStalls: 1)
        let rates = try #require(begun)
        #expect(rates.segmentBytesPerSecond == SplitWritePace.minimumBytesPerSecond)
    }

    /// Checkpoints of alternating length (one that used its whole budget, the
    /// next due at once) are measured over the window, not from one start to
    /// the next: the pace stays steady where it alternated twofold.
    @Test func alternatingIntervalsGiveASteadyPace() throws {
        var pace = SplitWritePace()
        var now: Int64 = 0
        var bytes: UInt64 = 0
        var paces: [Double] = []
        for n in 0..<12 {
            // 12 MB over 2.3 s, then 8.5 MB over 0.85 s, and again.
            let (interval, written): (Int64, UInt64) = n % 2 == 0 ? (2_300_000_000, 12_000_000) : (850_000_000, 8_500_000)
            if let rates = pace.checkpointBegins(now: now, segmentBytes: bytes, reserved: 0, journalStalls: UInt64(n + 1)), n >= SplitWritePace.windowCheckpoints {
                paces.append(rates.segmentBytesPerSecond)
            }
            now += interval
            bytes += written
        }
        let low = try #require(paces.min()), high = try #require(paces.max())
        #expect(high / low < 1.25, "paces \(paces)")
    }
}

/// Pauses between a paced checkpoint's segment writes.
@Suite struct SplitWritePacerTests {
    static let ms: Int64 = 1_000_000
    /// A checkpoint on the SD-card profile: 30 MB of the 64 MiB ring in use, the journal at 9 MB/s.
    static let room = CheckpointPolicy.PauseCheck(
        stopping: false, appendsWaitedForSpace: false,
        reserved: 100 << 20, checkpoint: (100 << 20) - 30_000_000, capacity: 64 << 20,
        bytesPerSecond: 9_000_000, pausedNanoseconds: 0)

    static func with(_ change: (inout CheckpointPolicy.PauseCheck) -> Void) -> CheckpointPolicy.PauseCheck {
        var check = room
        change(&check)
        return check
    }

    /// Writes ahead of the pace wait until they are due; writes behind it do not wait.
    @Test func writesAheadOfThePaceWaitUntilDue() {
        var pacer = SplitWritePace.Pacer(start: 0, startBytes: 1_000, bytesPerSecond: 10_000_000)
        #expect(pacer.pause(now: 5 * Self.ms, bytes: 1_000 + 100_000) { _ in Self.room } == 5 * Self.ms,
                "100 KB at 10 MB/s are due 10 ms after the start")
        pacer.paused(from: 5 * Self.ms, to: 10 * Self.ms)
        var asked = false
        #expect(pacer.pause(now: 40 * Self.ms, bytes: 1_000 + 200_000) { _ in asked = true; return Self.room } == 0)
        #expect(!asked, "behind the pace: the policy is not even asked")
        #expect(pacer.pausedNanoseconds == 5 * Self.ms && pacer.on)
        #expect(pacer.pause(now: 40 * Self.ms, bytes: 1_000 + 2_000_000) { _ in Self.room } == SplitWritePace.longestPauseNanoseconds,
                "far ahead (due at 200 ms): one pause at most, then the room is weighed again")
    }

    /// Once the policy says no the rest goes at full speed, even if the pressure is gone.
    @Test(arguments: [
        ("an append waited for ring space", with { $0.appendsWaitedForSpace = true }),
        ("closing", with { $0.stopping = true }),
        ("less than a quarter of the ring free", with { $0.checkpoint = $0.reserved - (49 << 20); $0.bytesPerSecond = 0 }),
        ("the free space lasts under 1.25 times the budget", with { $0.bytesPerSecond = 20_000_000 }),
    ])
    func pacingSwitchesOffForTheRestOfTheCheckpoint(_ what: String, _ pressure: CheckpointPolicy.PauseCheck) {
        var pacer = SplitWritePace.Pacer(start: 0, startBytes: 0, bytesPerSecond: 1_000_000)
        #expect(pacer.pause(now: 0, bytes: 100_000) { _ in pressure } == 0, "\(what)")
        #expect(!pacer.on)
        #expect(pacer.pause(now: 0, bytes: 200_000) { _ in Self.room } == 0, "\(what)")
    }

    /// The pauses of one checkpoint add up to the budget at most, and the free
    /// space is weighed against the budget still left, so the pauses go on as
    /// the budget is spent.
    @Test func thePausesStayWithinTheBudget() {
        var pacer = SplitWritePace.Pacer(start: 0, startBytes: 0, bytesPerSecond: 1_000_000)
        var bytes: UInt64 = 0
        let total = takePausesUntilRefused(
            pause: { now in
                bytes += 100_000
                return pacer.pause(now: now, bytes: bytes) { paused in Self.with { $0.pausedNanoseconds = paused } }
            },
            paused: { pacer.paused(from: $0, to: $1) })
        #expect(total == SplitWritePace.pauseBudgetNanoseconds)
        #expect(!pacer.on)
    }

    /// Not paced at all: never pauses.
    @Test func anUnpacedWritingNeverPauses() {
        var pacer = SplitWritePace.Pacer(start: 0, startBytes: 0, bytesPerSecond: nil)
        #expect(!pacer.on)
        #expect(pacer.pause(now: 0, bytes: 1 << 30) { _ in Self.room } == 0)
    }
}
