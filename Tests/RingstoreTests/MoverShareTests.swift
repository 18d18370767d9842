import Testing
@testable import Ringstore

/// The segment mover's share of the time: halved after a journal stall down to
/// its minimum, grown back a step per quiet batch up to its maximum.
@Suite struct MoverShareTests {
    @Test func aJournalStallHalvesTheShareDownToItsMinimum() {
        var share = MoverShare(maximum: 0.25, minimum: 1.0 / 64, step: 1.0 / 256)
        #expect(share.current == 0.25)
        share.batchEnded(journalStalled: true)
        #expect(share.current == 0.125)
        for _ in 0..<10 { share.batchEnded(journalStalled: true) }
        #expect(share.current == 1.0 / 64)
    }

    @Test func quietBatchesGrowTheShareBackByStepsUpToItsMaximum() {
        var share = MoverShare(maximum: 0.25, minimum: 1.0 / 64, step: 1.0 / 256)
        for _ in 0..<10 { share.batchEnded(journalStalled: true) }
        share.batchEnded(journalStalled: false)
        #expect(share.current == 1.0 / 64 + 1.0 / 256)
        for _ in 0..<1_000 { share.batchEnded(journalStalled: false) }
        #expect(share.current == 0.25)
    }

    @Test func thePauseKeepsTheMoverToItsShareAndLastsASecondAtMost() {
        var share = MoverShare(maximum: 0.25, minimum: 1.0 / 64, step: 0)
        #expect(share.pauseNanoseconds(afterBusy: 10_000_000) == 30_000_000, "a quarter of the time: three times the batch")
        share.batchEnded(journalStalled: true)
        #expect(share.pauseNanoseconds(afterBusy: 10_000_000) == 70_000_000)
        for _ in 0..<10 { share.batchEnded(journalStalled: true) }
        #expect(share.pauseNanoseconds(afterBusy: 10_000_000) == 630_000_000)
        #expect(share.pauseNanoseconds(afterBusy: 50_000_000) == 1_000_000_000, "at most a second")
        #expect(share.pauseNanoseconds(afterBusy: -5) == 0)
    }

    @Test func outOfRangeSettingsAreClamped() {
        let share = MoverShare(maximum: 3, minimum: 5, step: -1)
        #expect(share.maximum == 1 && share.minimum == 1 && share.step == 0)
        #expect(share.pauseNanoseconds(afterBusy: 1_000_000) == 0, "all the time: no pause")
    }

    @Test func theGroupCommitPolicySaysWhichSyncsStalled() {
        var policy = GroupCommitPolicy(maxDelayNanoseconds: 2_000_000)
        let first = policy.synced(nanoseconds: 300_000, endedAt: 1_000_000)
        let slow = policy.synced(nanoseconds: 5_000_000, endedAt: 10_000_000)
        let stalled = policy.synced(nanoseconds: 30_000_000, endedAt: 50_000_000)
        #expect(!first, "the first sets the usual")
        #expect(!slow, "slow, but under 20 ms")
        #expect(stalled)
    }
}
