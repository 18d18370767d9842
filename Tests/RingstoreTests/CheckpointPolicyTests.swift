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
