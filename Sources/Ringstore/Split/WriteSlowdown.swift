/// How much appends are slowed while the split segments hold more than their
/// budget on a device short of writes: appends are then admitted on a clock
/// tick (every ``interval(segmentBytes:deviceShortOfWrites:)`` nanoseconds), all
/// those waiting at once (``JournalWriter/admissionIntervalNanoseconds``).
///
/// Why: on a device that serves few writes a second (an SD card: about 1,000,
/// and each journal sync costs two, the data and the cache flush) the journal
/// alone uses nearly all of them at full ingest, and the segment mover, which
/// needs a few writes per stream it moves, falls behind: the segments grow
/// past their budget, and past twice it the mover moves without pausing and
/// the journal's syncs stall behind it. Admitting appends in ticks bounds the
/// journal's syncs to one per tick (every waiting writer's append in it) and
/// leaves the rest of the device to the mover. Like RocksDB's delayed write
/// rate, the slowdown grows with the debt: from nothing at the budget to
/// ``longestIntervalNanoseconds`` at twice it. It is not a timeout: an
/// append slowed waits one tick at most. Where the device keeps up (the
/// group-commit policy never paces its syncs), appends are never slowed.
///
/// Pure value logic, so that it is tested without threads or a disk.
struct WriteSlowdown: Sendable, Equatable {
    /// The tick at twice the budget and beyond.
    static let longestIntervalNanoseconds: Int64 = 8_000_000

    /// The segments may hold this many bytes before appends are slowed.
    let budgetBytes: UInt64

    /// The admission tick for `segmentBytes` in the segments: 0 (not slowed)
    /// within the budget or while the device is not short of writes (the
    /// journal's group commit is not pacing its syncs), else growing in
    /// proportion to the bytes past the budget, up to the longest at twice it.
    func interval(segmentBytes: UInt64, deviceShortOfWrites: Bool) -> Int64 {
        guard deviceShortOfWrites, budgetBytes > 0, segmentBytes > budgetBytes else { return 0 }
        let excess = min(segmentBytes - budgetBytes, budgetBytes)
        let interval = Double(Self.longestIntervalNanoseconds) * Double(excess) / Double(budgetBytes)
        return max(1, Int64(interval))
    }
}
