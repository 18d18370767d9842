import Glibc
import Synchronization

/// Moves stream entries out of the split segments into their stream files, in
/// the background and paced, and deletes each segment once everything in it
/// is in durable stream files.
///
/// Why paced: moving a segment writes into the file of every stream it holds
/// (thousands of small random writes and their file-system metadata). On flash
/// those writes queue in the device in front of the journal's flushes, so the
/// mover keeps its own share of the time it spends on I/O to ``Policy/busyShare``
/// (sleeping after each batch in proportion to how long the batch took), unless
/// the segments have grown to twice their budget: then the disk's free space
/// comes first and it moves without pausing. That share is the most it takes:
/// after a batch during which a journal sync stalled it is halved, and it
/// grows back by a step after each batch during which none did
/// (``MoverShare``), so that on a device short of writes the mover uses what
/// the journal leaves. Past three times the budget checkpoints wait for the
/// mover (``holdsCheckpoints``), and with them the ingest.
///
/// Which segments: the oldest, once the segments together exceed
/// ``Policy/budgetBytes``, and only when a completed checkpoint covers all of
/// it (its entries are durable and will not be cut at the next open); each
/// stream moved from it takes its entries in newer segments within the
/// budget along (see ``moveSegment(_:urgent:)``). Such a sweep goes a batch
/// at a time, taking turns with the ripe streams below
/// (``moveNextBatches(sweep:yielding:)``).
///
/// Which streams besides: any whose chain reached a block's worth
/// (``SplitSegments/ripeBytes``), moved whole as soon as it ripens, in
/// batches paced as above. Those moves are optional (the sweeps past the
/// budget, and the limit past it, bound the segments), so while half the
/// ring or more waits to be split and checkpointed (`splitUnderPressure`)
/// the mover leaves ripe streams for later, unless the segments hold more
/// than twice their budget; the oldest segment's paced moving above goes on.
/// Moving is the split's own
/// compaction: on two processors the ripe moves' file creations, copies and
/// syncs took a quarter to half of a processor from the splitter just when
/// appends of 100 events were waiting for ring space (RocksDB likewise lets
/// flushes go before compaction). What is left stays readable in the segments.
///
/// The order of writes and syncs for one segment, and what a crash between
/// them leaves:
/// 1. each stream's entries are appended to its file (not synced) — a crash
///    leaves the segment intact; a torn block at a file's end is cut at open
///    (the segment still holds its versions), a whole one is kept and the
///    segment's copies of it are skipped by readers;
/// 2. the files of a batch are synced: one `syncfs`, which writes back every
///    dirty page and inode of the file system (the batch's files, new files'
///    and new folders' directory entries) and waits for them, a journal commit
///    and a device cache flush on ext4; a failure marks the open files to
///    write their unsynced bytes again and the segment stays;
/// 3. once every stream of the segment is moved and synced, and each entry of
///    the segment is checked to lie below its stream file's end, the segment
///    is unlinked; its folder is synced with the next checkpoint's segment
///    sync — if that is lost, the segment comes back at open, holding only
///    versions its streams' files already hold (skipped), and is deleted again.
final class SegmentMover: Sendable {
    /// When and how fast to move.
    struct Policy: Sendable {
        /// The segments may hold this many bytes before the oldest is moved.
        var budgetBytes: UInt64
        /// Share of the time the mover spends on I/O while under twice its budget, at most.
        var busyShare: Double = 0.25
        /// The least share it keeps after journal stalls (see ``MoverShare``).
        var minimumBusyShare: Double = 1.0 / 64
        /// Added to the share after each batch without a journal stall.
        var busyShareStep: Double = 1.0 / 256
        /// Streams moved between two syncs, at most.
        var batch: Int = 64
        /// Streams moved between two syncs, at least.
        var minimumBatch: Int = 4
        /// Streams moved between two syncs while checkpoints wait for the mover
        /// (``SegmentMover/holdsCheckpoints``), at most: no journal flush is then there
        /// to wait behind a batch's sync, and each sync's commit is shared by more
        /// files (see ``SegmentMover/heldBatchLimit``).
        var heldBatch: Int = 1024
        /// The least a held batch moves, whatever the open-file cache (see ``SegmentMover/heldBatchLimit``).
        var minimumHeldBatch: Int = 256
        /// Threads that move a batch's streams side by side while checkpoints
        /// wait for the mover (one otherwise): see ``SegmentMover/moveBatch(_:of:segment:through:lanes:)``.
        var heldLanes: Int = max(1, min(4, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))))
        /// A batch's sync should take about this long at most: the batch is
        /// halved after a longer one and doubled after one under a quarter of it.
        var syncTargetNanoseconds: Int64 = 20_000_000

        /// A stream with entries in the segment being emptied is moved through
        /// newer segments too (up to where the budget ends) if its chain holds at
        /// most this many raw bytes; a longer one only through that segment, so
        /// that one move never holds much in memory.
        var chainMoveBytes: UInt32 = 1 << 20

        /// Streams a held batch moves with an open-file cache of `openFiles`
        /// descriptors (see ``SegmentMover/heldBatchLimit``).
        func heldBatchSize(openFiles: Int) -> Int { max(minimumHeldBatch, min(heldBatch, openFiles / 4)) }

        /// Past this many bytes in the segments the mover moves without pacing,
        /// and ripe streams no longer wait for the split.
        var urgentBytes: UInt64 { 2 * budgetBytes }

        /// Past this many bytes in the segments a checkpoint covers, checkpoints
        /// wait for the mover (see ``SegmentMover/holdsCheckpoints``).
        var holdBytes: UInt64 { 3 * budgetBytes }
    }

    let store: SplitStore
    let policy: Policy
    /// Names the store in thread errors (the mover's own and its lanes').
    let owner: String

    private struct State: ~Copyable {
        var stopping = false
        var paused = false
        /// Tests: moves nothing, yet counts as running (see ``suspendMoving()``).
        var suspended = false
        var failure: RingstoreError?
    }
    private let state: Mutex<State>
    private let doorbell = Doorbell()
    private let thread: BackgroundThread
    /// Whether the split is behind enough that the mover should give it the processors.
    private let splitUnderPressure: @Sendable () -> Bool
    /// The journal's stalled syncs so far (``JournalWriter/syncStalls``).
    let journalStalls: @Sendable () -> UInt64
    /// Called after each segment is deleted (wakes a splitter whose checkpoints wait for it).
    let segmentDeleted: @Sendable () -> Void
    /// The share of the time the mover may take now (only its thread changes it).
    private let share: Mutex<MoverShare>

    /// How long the mover waits before looking again while it yields to the split.
    static let yieldNanoseconds: Int64 = 20_000_000

    /// Segments deleted (stats).
    let segmentsDeleted = Atomic<UInt64>(0)

    /// The stream-file ends the last finished sweep's moves saw, by stream
    /// number, handed to the next sweep (see ``SegmentMover/Sweep``).
    ///
    /// Why: a stream a sweep moved whole leaves nothing in the newer segments
    /// it took along, so their sweeps move nothing for it and never see its
    /// file; checking that each such segment holds nothing left behind then
    /// opened the file again (with 100,000 streams, most of them closed by the
    /// open-file cache meanwhile: 6-27 % of the mover's samples during a hold,
    /// by two rough counts of `perf record -g`).
    /// A file's end only grows while the store is open, so an end seen earlier
    /// is a lower bound of the file's end now: an entry below it has moved; an
    /// entry at or past it is looked up in the file before it counts as left
    /// behind. Ends of streams numbered up to ``carriedFileEndsLimit`` are carried.
    let carriedFileEnds = Mutex(StreamFileEnds())
    /// The most streams ``carriedFileEnds`` spans (8 MiB at most); a sweep
    /// that saw a stream numbered past it hands no end on.
    static let carriedFileEndsLimit = 1 << 20
    /// Stream-file ends a sweep's final check looked up because no end seen
    /// before showed the entry moved (tests).
    let fileEndsLookedUp = Atomic<UInt64>(0)

    /// Streams moved between two syncs now, within ``Policy/minimumBatch`` and
    /// ``Policy/batch``, following how long the last syncs took.
    ///
    /// Why: a batch's sync (one `syncfs`) puts every page and inode the batch
    /// dirtied into the device's queue at once, and a journal flush that
    /// arrives meanwhile waits behind all of it. On the working disk a sync of
    /// 64 files takes about a millisecond; on an SD card (1,000 writes a
    /// second) about 200 ms, and appends stalled that long. Sized by the sync's
    /// own duration, a batch costs the journal about ``Policy/syncTargetNanoseconds``
    /// at most on any device, without a setting per device.
    let batchSize: Atomic<Int>

    /// Streams the next batch moves between two syncs (see `batchSize`;
    /// ``Policy/heldBatch`` while checkpoints wait for the mover).
    var currentBatch: Int { batchLimit(held: holdsCheckpoints) }

    /// Streams a batch moves between two syncs, given whether checkpoints wait for the mover.
    func batchLimit(held: Bool) -> Int { held ? max(heldBatchLimit, policy.batch) : batchSize.load(ordering: .relaxed) }

    /// Streams a batch moves while checkpoints wait for the mover:
    /// ``Policy/heldBatch``, unless the open-file cache would then close some
    /// of the batch's files before its sync (a file may take two descriptors,
    /// its data and its index, and others use the cache too): a quarter of the
    /// cache's descriptors, but at least ``Policy/minimumHeldBatch``.
    ///
    /// Why 1,024 where the cache allows: during a hold nothing else waits for
    /// the device, and each batch ends in one sync on the mover's thread while
    /// its other lanes have nothing to do: with 100,000 streams and batches of
    /// 256 the syncs took about a third of the hold (32-42 a second, about 10 ms
    /// each, on the working disk); with 1,024 the hold was 10.5 / 11.5 s
    /// against 14.5 / 13.2 s (`ringstore bench --streams 100000 --event-size
    /// 200 --writers 64 --batch 100 --warm-up --duration 40`, alternating). A
    /// file closed before its batch's sync would make the sync a `syncfs`
    /// of the whole file system (``StreamDirectory/syncAll(dirty:wholeFileSystem:)``).
    var heldBatchLimit: Int { policy.heldBatchSize(openFiles: store.directory.maxOpenFiles) }

    /// Starts the mover's thread; `owner` names the store in thread errors.
    /// `splitUnderPressure`: whether ripe streams wait (see above).
    /// `journalStalls`: the journal's stalled syncs so far (see ``MoverShare``).
    /// `segmentDeleted`: called after each segment is deleted. `paused`: starts
    /// paused (see ``pause()``), so that its thread moves nothing before the
    /// caller (a test driving the mover by hand) could pause it.
    init(store: SplitStore, policy: Policy, owner: String,
         splitUnderPressure: @escaping @Sendable () -> Bool = { false },
         journalStalls: @escaping @Sendable () -> UInt64 = { 0 },
         segmentDeleted: @escaping @Sendable () -> Void = {},
         paused: Bool = false) throws {
        state = Mutex(State(paused: paused))
        self.store = store
        self.policy = policy
        self.owner = owner
        self.journalStalls = journalStalls
        self.segmentDeleted = segmentDeleted
        share = Mutex(MoverShare(maximum: policy.busyShare, minimum: policy.minimumBusyShare, step: policy.busyShareStep))
        batchSize = Atomic(max(1, policy.batch))
        self.splitUnderPressure = splitUnderPressure
        thread = BackgroundThread(name: "rs-mover", owner: owner, background: true)
        try thread.start { [self] in run() }
    }

    /// The last failure, until a segment is moved successfully.
    var failure: RingstoreError? { state.withLock { $0.failure } }

    /// Looks for work now (the checkpointer rings after each checkpoint).
    func wake() { doorbell.ring() }

    /// Stops moving (tests use it to keep segments around).
    func pause() { state.withLock { $0.paused = true } }

    func resume() {
        state.withLock { $0.paused = false }
        doorbell.ring()
    }

    /// Tests: moves nothing until ``resumeMoving()``, but unlike ``pause()``
    /// still counts as running, as a mover slower than the ingest would
    /// (checkpoints wait for it past the segments' limit: ``holdsCheckpoints``).
    func suspendMoving() { state.withLock { $0.suspended = true } }

    func resumeMoving() {
        state.withLock { $0.suspended = false }
        doorbell.ring()
    }

    /// Finishes the batch in progress and stops; returns once its thread has exited.
    func stop() async {
        state.withLock { $0.stopping = true }
        doorbell.ring()
        await thread.exited()
    }

    /// ``stop()`` from a thread that may block (a failed open).
    func stopAndWait() {
        state.withLock { $0.stopping = true }
        doorbell.ring()
        thread.waitUntilExited()
    }

    var stopping: Bool { state.withLock { $0.stopping } }

    /// Whether checkpoints wait for the mover: the segments a completed
    /// checkpoint covers hold more than ``Policy/holdBytes``, and the mover is
    /// not paused. The splitter then writes no checkpoint (a close's last one
    /// excepted) until the mover has deleted enough, so the ring stops freeing
    /// space and appends wait for it (and fail with `.journalFull` past
    /// `journalFullWait`); the mover meanwhile moves without pausing.
    ///
    /// Why: with many streams and large appends the splitter can fill segments
    /// faster than the mover empties them into stream files (100,000 streams,
    /// 100 events per append: 4 GiB of segments after 90 s on the working disk,
    /// growing all along), and a small device's free space would run out.
    /// Holding the ingest back at a limit is RocksDB's
    /// `hard_pending_compaction_bytes_limit`. Only covered segments count:
    /// those are the ones the mover can empty, so a hold always ends once the
    /// mover has moved enough (newer segments hold at most a ring's worth).
    /// A paused mover (tests) holds nothing back, since nothing would end the hold.
    var holdsCheckpoints: Bool {
        guard !state.withLock({ $0.paused }) else { return false }
        return store.segments.checkpointedBytes > policy.holdBytes
    }

    /// Whether the segments exceed their budget, so that the mover sweeps
    /// them (and needs the device's spare writes).
    var segmentsOverBudget: Bool { store.segments.totalBytes > policy.budgetBytes }

    private func run() {
        var consecutiveFailures = 0
        var sweep: Sweep?
        while !stopping {
            do {
                let paused = state.withLock { $0.paused || $0.suspended }
                // A paused mover forgets its sweep (tests move segments themselves meanwhile);
                // starting again walks the segment again and passes over what was moved.
                if paused { sweep = nil }
                let yielding = !paused && mustYieldToSplit()
                let worked = paused ? false : try moveNextBatches(sweep: &sweep, yielding: yielding)
                if yielding && !worked {
                    doorbell.wait(timeoutNanoseconds: Self.yieldNanoseconds) { !stopping }
                    continue
                }
                if consecutiveFailures > 0 {
                    consecutiveFailures = 0
                    state.withLock { $0.failure = nil }
                }
                if !worked { doorbell.wait(timeoutNanoseconds: 1_000_000_000) { !stopping } }
            } catch {
                // Nothing is lost: a segment is deleted only after everything in it is durable elsewhere.
                // The next try begins its sweep again (what a failed batch wrote is passed over or written again).
                sweep = nil
                state.withLock { $0.failure = (error as? RingstoreError) ?? RingstoreError(.ioError, "moving split segments failed: \(error)") }
                consecutiveFailures += 1
                let pause: Int64 = min(1_000_000_000, 10_000_000 << Int64(min(consecutiveFailures - 1, 7)))
                doorbell.wait(timeoutNanoseconds: pause) { !stopping }
            }
        }
    }

    /// The mover's work between two looks at whether it must pause: ripe
    /// streams (unless `yielding`), then a batch of the sweep of the oldest
    /// segment (begun if it is due). While a sweep is in progress the ripe
    /// streams get one batch a turn, so the two take turns. Returns whether
    /// it moved anything.
    ///
    /// Why turns: a sweep used to begin only in a round with no ripe stream,
    /// and once the segments held twice their budget (the ripe streams no
    /// longer yielding to the split) such a round need never come: with many
    /// streams and appends of many events some chain ripens all the time.
    /// The segments then kept growing however fast the ripe streams moved,
    /// since only a sweep deletes a segment.
    func moveNextBatches(sweep: inout Sweep?, yielding: Bool) throws -> Bool {
        if sweep == nil { sweep = try sweepOfOldestSegmentIfDue() }
        let movedRipe = try !yielding && moveRipeStreams(batches: sweep == nil ? .max : 1)
        guard var current = sweep else { return movedRipe }
        sweep = nil  // held once while it moves: its file ends are not copied on write
        let started = monotonicNanoseconds()
        let stallsAtStart = journalStalls()
        if try !continueSweep(&current) {
            sweep = current
            sleepAfterBatch(startedAt: started, stallsAtStart: stallsAtStart, pausing: current.pausesAfterBatch)
        }
        return true
    }

    /// Moves the chains that reached a block's worth (``SplitSegments/ripeBytes``)
    /// into their files, at most `batches` batches (the rest stay ripe for the
    /// next call). Returns whether it moved any. (Moving entries a checkpoint
    /// does not cover yet is safe: should the journal replay them, the
    /// splitter skips versions the stream file holds.)
    func moveRipeStreams(batches: Int = .max) throws -> Bool {
        let ripe = store.segments.takeRipe().sorted()
        guard !ripe.isEmpty else { return false }
        var batchesLeft = batches
        var names = MovedStreams()
        var moved = false
        var batchStarted = monotonicNanoseconds()
        var stallsAtStart = journalStalls()
        var batchLimit = currentBatch
        for (i, number) in ripe.enumerated() {
            guard let name = store.catalog.name(of: number),
                  let head = store.segments.head(of: number), head.rawBytes >= SplitSegments.ripeBytes
            else { continue }
            if let outcome = try store.move(stream: name, number: number) { names.add(name, number: number, outcome) }
            if names.count >= batchLimit {
                try syncMoved(names)
                names = MovedStreams()
                moved = true
                batchesLeft -= 1
                let yielding = mustYieldToSplit()
                if !yielding {
                    sleepAfterBatch(startedAt: batchStarted, stallsAtStart: stallsAtStart,
                                    pausing: store.segments.totalBytes <= policy.urgentBytes)  // checkpoints wait only past it
                }
                if yielding || batchesLeft == 0 {
                    store.segments.returnRipe(ripe[(i + 1)...])
                    return true
                }
                batchStarted = monotonicNanoseconds()
                stallsAtStart = journalStalls()
                batchLimit = currentBatch
            }
        }
        if names.count > 0 {
            try syncMoved(names)
            moved = true
        }
        return moved
    }

    /// Records whether the journal stalled during a batch (``MoverShare``) and,
    /// if `pausing`, sleeps so that the mover's share of the time stays at the
    /// share that leaves (callers do not pause while the segments hold more
    /// than ``Policy/urgentBytes``: then the disk's free space comes first).
    func sleepAfterBatch(startedAt started: Int64, stallsAtStart: UInt64, pausing: Bool) {
        let busy = monotonicNanoseconds() - started
        let stalled = journalStalls() > stallsAtStart
        let pause = share.withLock { share in
            share.batchEnded(journalStalled: stalled)
            return share.pauseNanoseconds(afterBusy: busy)
        }
        if pausing && pause > 0 { doorbell.wait(timeoutNanoseconds: pause) { !stopping } }
    }

    /// The share of the time the mover may take now (see ``MoverShare``).
    var currentShare: Double { share.withLock { $0.current } }

    /// Whether ripe streams wait, leaving the processors to the split: it is
    /// under pressure, and the segments are within twice their budget.
    func mustYieldToSplit() -> Bool {
        guard splitUnderPressure() else { return false }
        return store.segments.totalBytes <= policy.urgentBytes
    }

    /// Syncs the files moved into, stream files and bucket files together (one
    /// `syncfs`, or one journal commit: per-file syncs cost a file-system
    /// journal commit each, and their folders' as many again), then lets the
    /// segments forget chains moved whole, and sizes the next batch.
    func syncMoved(_ names: MovedStreams) throws {
        guard names.count > 0 else { return }  // a batch that wrote nothing: a `syncfs` would only flush others' pages
        let started = monotonicNanoseconds()
        store.buckets.drainWriteback()
        let buckets = store.buckets.pendingSync()
        do {
            try buckets.rewriteIfFailed()
            try store.directory.syncAll(dirty: names.files, wholeFileSystem: true, others: buckets.storageFiles)
        } catch {
            store.buckets.syncFailed(buckets)
            throw error
        }
        store.buckets.synced(buckets)
        let took = monotonicNanoseconds() - started
        let current = batchSize.load(ordering: .relaxed)
        if took > policy.syncTargetNanoseconds {
            batchSize.store(max(min(policy.minimumBatch, policy.batch), current / 2), ordering: .relaxed)
        } else if took < policy.syncTargetNanoseconds / 4 && names.count >= current {
            batchSize.store(min(policy.batch, current * 2), ordering: .relaxed)
        }
        store.segments.forgetMoved(names.numbers)
        // Now, before the next batch: no append in flight, every promoted stream's file durable.
        store.buckets.writeSnapshotIfGrown()
    }
}

/// The streams a batch of the mover moved: the names of those moved into
/// their files (to sync), and the numbers of all (whose chains the segments
/// forget once the batch is synced).
struct MovedStreams {
    private(set) var files: [String] = []
    private(set) var numbers: [UInt32] = []
    var count: Int { numbers.count }

    mutating func add(_ name: String, number: UInt32, _ outcome: SplitStore.MoveOutcome) {
        if outcome == .file { files.append(name) }
        numbers.append(number)
    }
}
