/// When the splitter writes a checkpoint, and when it writes pending records
/// ahead of one: pure functions of what the splitter's loop knows at one pass
/// (no clock, no lock, no thread), so they are tested as a table.
enum CheckpointPolicy {
    /// What one pass of the splitter's loop knows.
    struct Pass: Sendable, Equatable {
        /// Records before it have been scanned (the scan cursor).
        var scanned: UInt64
        /// The journal's checkpoint.
        var checkpoint: UInt64
        /// The end of the ring space handed out to appends.
        var reserved: UInt64
        /// The ring's capacity.
        var capacity: UInt64
        /// Streams with records pending (scanned, not yet written).
        var pendingStreams: Int
        /// The journal's recent pace (see ``Pace``).
        var bytesPerSecond: Double
        /// Since the scan last found new records, and since the last checkpoint was handed over.
        var nanosecondsSinceScan: Int64
        var nanosecondsSinceCheckpoint: Int64
        /// A close asked the splitter to stop, and the scan has reached the acknowledged cursor.
        var stopping: Bool
        var caughtUp: Bool
        /// A test asked for a checkpoint now.
        var forced: Bool
        /// The previous checkpoint is still being synced by the ``Checkpointer``.
        var checkpointerBusy: Bool
        /// The split segments are past their limit and checkpoints wait for the
        /// mover (``SegmentMover/holdsCheckpoints``).
        var segmentsHoldCheckpoints = false
    }

    /// A checkpoint follows at most this long after the journal went quiet…
    static let quietNanoseconds: Int64 = 1_000_000_000
    /// …and at least this often while records keep arriving.
    static let maxIntervalNanoseconds: Int64 = 10_000_000_000

    /// Writers are short of space once half the ring is in use.
    static func writersShortOfSpace(_ pass: Pass) -> Bool {
        writersShortOfSpace(reserved: pass.reserved, checkpoint: pass.checkpoint, capacity: pass.capacity)
    }

    /// ``writersShortOfSpace(_:)`` from the journal's cursors alone (the segment
    /// mover asks it too: then it leaves the processors to the split).
    static func writersShortOfSpace(reserved: UInt64, checkpoint: UInt64, capacity: UInt64) -> Bool {
        reserved - checkpoint >= capacity / 2
    }

    /// Whether to hand a checkpoint to the checkpointer now: one is never
    /// submitted while the previous one is syncing, nor when nothing new was
    /// scanned; otherwise when enough is scanned (``checkpointBytes(capacity:pendingStreams:bytesPerSecond:)``),
    /// when writers are short of space, when the journal has been quiet for a
    /// second, every ten seconds, on close once caught up, or when a test asks;
    /// but, closing and tests aside, not while the segments hold checkpoints
    /// back (``heldBySegments(_:)``).
    static func isDue(_ pass: Pass) -> Bool {
        wanted(pass) && !heldBySegments(pass)
    }

    /// Whether a checkpoint that would be due waits for the segment mover: the
    /// segments are past their limit, and neither a close nor a test asks for it.
    /// (A close's last checkpoint adds at most a ring's worth.)
    static func heldBySegments(_ pass: Pass) -> Bool {
        pass.segmentsHoldCheckpoints && !pass.stopping && !pass.forced
    }

    /// Whether a checkpoint would be due, the segments' limit aside.
    static func wanted(_ pass: Pass) -> Bool {
        guard !pass.checkpointerBusy, pass.scanned > pass.checkpoint else { return false }
        return pass.scanned - pass.checkpoint >= checkpointBytes(capacity: pass.capacity, pendingStreams: pass.pendingStreams,
                                                                 bytesPerSecond: pass.bytesPerSecond)
            || writersShortOfSpace(pass)
            || pass.nanosecondsSinceScan >= quietNanoseconds
            || pass.nanosecondsSinceCheckpoint >= maxIntervalNanoseconds
            || (pass.stopping && pass.caughtUp)
            || pass.forced
    }

    /// Whether to write every pending record now, without a checkpoint: when
    /// writers are short of space while the checkpoint in progress is still
    /// syncing and the pass found nothing else to do, so that the next
    /// checkpoint can follow at once (smaller blocks, but the ring frees up
    /// sooner). Not while the segments hold checkpoints back: no checkpoint
    /// would follow, and the segments would only grow.
    static func writeAhead(_ pass: Pass, passDidWork: Bool) -> Bool {
        pass.checkpointerBusy && !passDidWork && writersShortOfSpace(pass) && pass.pendingStreams > 0
            && !heldBySegments(pass)
    }

    /// How much scanned journal makes a checkpoint due: a quarter of the ring,
    /// or up to half of it while many streams have records pending.
    ///
    /// Why: a checkpoint writes one block to every stream with pending records,
    /// so its cost grows with the number of those streams, not with the bytes.
    /// With one-event appends spread over 10,000 streams, a quarter of a 64 MiB
    /// ring gives blocks of about six events, and the splitter spends its time in
    /// ten thousand small writes (and index entries) per checkpoint. Waiting for
    /// about 3 KiB per pending stream, up to half the ring, makes those blocks
    /// larger; with few streams (large appends) nothing changes. Half the ring
    /// still leaves the other half for appends while the checkpoint is written
    /// — but not when the journal fills fast: at a pace that fills a quarter of
    /// the ring in under half a second, a checkpoint writing thousands of streams
    /// would take longer than the rest of the ring lasts, so it starts at a quarter.
    static func checkpointBytes(capacity: UInt64, pendingStreams: Int, bytesPerSecond: Double) -> UInt64 {
        guard bytesPerSecond * 0.5 < Double(capacity / 4) else { return capacity / 4 }
        return max(capacity / 4, min(capacity / 2, UInt64(pendingStreams) * 3 << 10))
    }

    /// The journal's recent pace, measured over windows of at least 100 ms;
    /// after a second without new records it drops to 0 (the pace is then
    /// what comes next).
    struct Pace: Sendable, Equatable {
        private(set) var bytesPerSecond = 0.0
        private var windowStart: Int64
        private var windowScanned: UInt64

        init(now: Int64, scanned: UInt64) {
            windowStart = now
            windowScanned = scanned
        }

        /// After a pass of the loop at `now`: `scanned` is the scan cursor, and
        /// `found` tells whether the pass scanned new records.
        mutating func update(now: Int64, scanned: UInt64, found: Bool) {
            let window = now - windowStart
            if found {
                if window >= 100_000_000 {
                    bytesPerSecond = Double(scanned - windowScanned) * 1e9 / Double(window)
                    (windowStart, windowScanned) = (now, scanned)
                }
            } else if window >= 1_000_000_000 {
                bytesPerSecond = 0
                (windowStart, windowScanned) = (now, scanned)
            }
        }
    }
}
