/// Decides, in durable mode, whether the flusher syncs a batch as soon as
/// nothing more is staged, or first lets it gather appends for a while.
///
/// Syncing at once is right while the device has writes to spare: the appends
/// a sync acknowledges come back a few hundred microseconds later, and two
/// batches in turn (one syncing while the other gathers) keep the CPU and the
/// disk both busy. It is wrong on a device that serves few writes a second (an
/// SD card: ~1,000, and each sync costs two, the data and the cache flush): a
/// flusher that syncs whenever the queue looks empty catches a fraction of the
/// writers each time, runs the device out of writes, and then every queued
/// write waits for the device's next slot (measured: stalls of 75 ms every
/// 100 ms, append p99 60-80 ms, at 17,000 appends a second from 64 writers).
///
/// So the policy watches for such stalls (a sync at least ``stallNanoseconds``
/// long and four times as long as the usual one) and, when two come within
/// ``stallSpacingNanoseconds`` (a device out of writes stalls again and again;
/// a fast disk has an odd slow sync now and then: under load here about one
/// in 15 s past 20 ms, while the card stalled every 100 ms), paces the syncs:
/// a batch then gathers until a window has passed since the last sync ended,
/// a window which opens to `maxFlushDelay` (the contract's bound on that
/// wait) and narrows by 1/2048 at every sync without a stall. On the card
/// that keeps the flusher at a few hundred full batches a second; elsewhere
/// the flusher syncs as soon as nothing more is staged.
///
/// Pure value logic, so that it is tested without threads or a disk.
struct GroupCommitPolicy: Sendable {
    /// A sync at least this slow (and four times the usual) is a stall.
    static let stallNanoseconds: Int64 = 20_000_000
    /// Two stalls at most this far apart show a device out of writes.
    static let stallSpacingNanoseconds: Int64 = 1_000_000_000
    /// The longest an unsynced write may wait (the durability mode's `maxFlushDelay`).
    let maxDelayNanoseconds: Int64
    /// A smoothed duration of the recent syncs that were no stall (an exponential average, weight 1/8).
    private(set) var syncNanoseconds: Int64 = 0
    /// How long a batch gathers now: opened by a stall, narrowed by every other sync.
    private(set) var windowNanoseconds: Int64 = 0
    /// When the last stall ended (monotonic nanoseconds), if there was one.
    private var lastStall: Int64?

    init(maxDelayNanoseconds: Int64) {
        self.maxDelayNanoseconds = max(0, maxDelayNanoseconds)
    }

    /// Records a sync that took `nanoseconds` and ended at `endedAt` (monotonic
    /// nanoseconds). Returns whether it was a stall (the segment mover backs off
    /// after one: ``MoverShare``).
    @discardableResult
    mutating func synced(nanoseconds: Int64, endedAt: Int64) -> Bool {
        let took = max(0, nanoseconds)
        if syncNanoseconds > 0 && took >= Self.stallNanoseconds && took >= 4 * syncNanoseconds {
            if let lastStall, endedAt - took - lastStall <= Self.stallSpacingNanoseconds {
                windowNanoseconds = maxDelayNanoseconds
            }
            lastStall = endedAt
            return true
        }
        windowNanoseconds -= (windowNanoseconds + 2047) / 2048
        syncNanoseconds = syncNanoseconds == 0 ? took : syncNanoseconds + (took - syncNanoseconds) / 8
        return false
    }

    /// When nothing more is staged: nil to sync now, or the monotonic time until
    /// which the batch gathers (the flusher then sleeps until then).
    ///
    /// The window counts from the end of the last sync: every append in the
    /// batch was staged after it, so none waits longer than the window (at
    /// most `maxFlushDelay`) for its sync to start.
    ///
    /// - Parameters:
    ///   - lastSync: when the last sync ended (monotonic nanoseconds).
    ///   - now: the monotonic time now.
    func gatherUntil(lastSync: Int64, now: Int64) -> Int64? {
        guard windowNanoseconds > 0 else { return nil }
        let deadline = lastSync + windowNanoseconds
        return deadline > now ? deadline : nil
    }
}
