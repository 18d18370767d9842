#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Dispatch
import Synchronization

/// Appends records to the ring journal with group commit.
///
/// The path of an append:
/// 1. `append` takes the writer lock once: checks the expected version,
///    reserves ring space (waiting, outside the lock, while the ring is full),
///    assigns versions and positions, encodes every record into the staging
///    buffer, and registers its continuation. One lock section per append,
///    whatever its number of events.
/// 2. The flusher thread swaps the staging buffer out, writes it with `pwrite`
///    (one call per contiguous segment) and, in durable mode, `fdatasync`s at
///    once; the appends staged while that sync runs are the next batch, so one
///    flush covers every append that was waiting for it. After repeated device
///    stalls it paces its syncs instead (``GroupCommitPolicy``), never holding
///    an append longer than `maxFlushDelay`.
/// 3. After the flush (durable) or the write (relaxed), the flusher hands every
///    append its cursor now covers to the ``Acknowledger``, whose thread resumes
///    them. Records are always copied before the flush that acknowledges them starts.
///
/// A failed write or flush does not stop the store. The appends that the
/// failed attempt covered get an ``RingstoreError/Code/ioError`` saying their
/// outcome is unknown (their records stay in the ring and become durable once a
/// flush succeeds, so a retry with the same event IDs is recognised as a
/// duplicate); the flusher then retries with backoff (5 ms doubling to 0.5 s).
/// Because a failed `fdatasync` on Linux may have marked the dirty pages clean
/// without writing them, the next sync never trusts the page cache: ``RingSync``,
/// through which every sync of the ring goes (header writes included), first
/// writes the whole unflushed range again (copied from the mapping, each
/// record's checksum and position verified) and only then flushes. Appends
/// staged meanwhile wait for the next attempt. Only if the unflushed records can
/// no longer be read back intact, or a flush fails while the store is closing,
/// is the writer poisoned: every later append fails with
/// ``RingstoreError/Code/storeFailed`` until the store is reopened.
///
/// The flusher sleeps in one place only (``sleepIfIdle(_:)``): it marks itself
/// idle, under the writer lock, only after finding nothing staged, and an
/// append that finds it idle wakes it. Every other wait (the backoff after a
/// failure) has a timeout.
///
/// Where each part is: step 1 in `JournalWriter+Append` (with the
/// expected-version check in `+ExpectedVersion` and hard deletes in
/// `+Tombstones`), steps 2 and 3 in `+Flusher`, syncs asked for from other
/// threads in `+Syncing`; what other code may ask about the index is in
/// `Journal+Queries`.
final class JournalWriter: Sendable {
    enum Mode: Sendable {
        case durable(maxFlushDelayNanoseconds: Int64)
        case relaxed(flushIntervalNanoseconds: Int64)
    }

    /// An append waiting for the cursor to pass its last record.
    struct Waiter: Sendable {
        var lastPosition: UInt64
        var result: AppendResult
        var continuation: UnsafeContinuation<Outcome, any Error>
    }

    enum Outcome: Sendable {
        case appended(AppendResult)
        case journalFull(needed: Int)
        /// The stream is not in the index yet: its version must be loaded from its file first.
        case unknownStream
        /// A retry of an append whose first events have left the ring: compare their IDs with the stream file's.
        case storedRetry(StoredRetry)
    }

    struct State: ~Copyable {
        var staging = StagingBuffer()
        var spare = StagingBuffer()
        var waiters: [Waiter] = []
        var index: JournalIndex
        var window: IdempotencyWindow
        /// End of the space handed out to appends (≥ written ≥ durable).
        var reserved: UInt64
        var checkpoint: UInt64
        var flusherIdle = false
        /// False while the flusher gathers a batch (see ``GroupCommitPolicy``): the
        /// appends staged meanwhile wait for its deadline rather than wake it.
        var flusherWokenByAppends = true
        var closing = false
        /// The flusher's stop, which `close()` waits for.
        var stop = StopHandshake()
        var failure: RingstoreError?
    }

    let ring: RingFile
    let epoch: UInt32
    let mode: Mode
    /// How long an append waits for ring space (`journalFullWait`). Atomic so that
    /// tests can shorten it once the condition they test has set in (see
    /// `EventStore.setJournalFullWait`); an append already waiting uses the new
    /// value from its next look at the ring.
    let journalFullWaitNanoseconds: Atomic<Int64>
    let state: Mutex<State>
    let wake = DispatchSemaphore(value: 0)
    /// The seed of the stream table recovery built, which is never replaced:
    /// appends hash their stream's name with it before taking the lock.
    let streamHashSeed: UInt64

    /// Every sync of the ring, and the written and durable cursors (see ``RingSync``).
    let ringSync: RingSync
    /// Records `pwrite`n into the ring (the page cache) end here.
    var written: UInt64 { ringSync.written.load(ordering: .acquiring) }
    /// Records flushed to stable storage end here.
    var durable: UInt64 { ringSync.durable.load(ordering: .acquiring) }
    /// The ring's flushes made for appends and checkpoints (not the open's or header writes') (stats).
    let flushCount = Atomic<UInt64>(0)
    /// Durable-mode syncs that stalled (``GroupCommitPolicy``: at least 20 ms
    /// and four times the usual); the segment mover backs off after one.
    let syncStalls = Atomic<UInt64>(0)
    /// Times the flusher let a batch gather after a device stall (see ``GroupCommitPolicy``).
    let gatheredBatches = Atomic<UInt64>(0)
    let acknowledger: Acknowledger
    /// Tests only: reached by an append right after it is staged (not by one
    /// answered at once), before its task awaits the acknowledgement (so a test can let the acknowledgement
    /// come first; see ``SanitizerAnnotations/resumingTask(_:)``).
    let appendStaged = TestHook()
    private let flusherThread: BackgroundThread
    /// Rung (on the flusher thread) each time the acknowledged cursor has moved
    /// ``splitterWakeBytes`` since the last ring: the splitter waits on it
    /// (readers and the checkpointer ring it too).
    let splitterDoorbell = Doorbell()
    /// How far the acknowledged cursor moves between two rings of ``splitterDoorbell``:
    /// a 64th of the ring, between 4 KiB and 256 KiB.
    ///
    /// Why not at every move: the splitter sleeps whenever it has caught up, so
    /// ringing after every flush woke it after every flush (1,800 times a second
    /// at 77,000 one-event appends a second) to scan a few kilobytes, each wake a
    /// futex call on the flusher and two context switches. Nothing waits on
    /// those scans: a stream reader asks the splitter itself (and rings), `$all`
    /// and subscriptions read the ring, and a checkpoint's triggers tolerate a
    /// scan a few hundred kilobytes behind. What is acknowledged after the last
    /// ring is scanned when the splitter's idle wait times out (100 ms).
    let splitterWakeBytes: UInt64
    /// The stream files, for streams whose records have left the ring.
    let stored: any StoredStreams
    /// Tells whether a stream not yet in the index was hard-deleted (the store installs it at open).
    let deletions = DeletionLookup()
    /// Times each flush (the store installs a metrics timer at open).
    let flushObserver = FlushObserver()
    /// Appends that had to wait for ring space (sampled for logs and metrics).
    let journalFullWaits = Atomic<UInt64>(0)
    /// Appends waiting for ring space (see ``RingSpaceWaiters``).
    let ringSpace = RingSpaceWaiters()

    /// True once the flusher has stopped (closed or failed).
    var isStopped: Bool { state.withLock { $0.stop.stopped } }

    /// Starts the acknowledger and flusher threads; if one cannot start, stops
    /// the other before throwing. `recovered` is consumed: the writer's copy is
    /// the only one (see ``JournalRecovery/Outcome``).
    init(ringSync: RingSync, mode: Mode, journalFullWait: Duration, window: IdempotencyWindow,
         recovered: consuming JournalIndex, checkpoint: UInt64, stored: any StoredStreams) throws {
        let ring = ringSync.ring
        self.ring = ring
        self.ringSync = ringSync
        self.stored = stored
        self.epoch = ringSync.epoch
        self.mode = mode
        self.journalFullWaitNanoseconds = Atomic(journalFullWait.nanoseconds)
        self.acknowledger = try Acknowledger(owner: ring.file.path.string)
        self.flusherThread = BackgroundThread(name: "rs-flusher", owner: ring.file.path.string)
        self.splitterWakeBytes = min(256 << 10, max(4 << 10, ring.capacity / 64))
        let end = ringSync.written.load(ordering: .acquiring)
        self.streamHashSeed = recovered.streams.hashSeed
        // Spinning: every append and each flusher pass take it, for about a microsecond.
        self.state = Mutex(State(index: recovered, window: window,
                                 reserved: end, checkpoint: checkpoint), spinning: true)
        do {
            try flusherThread.start { [self] in self.runFlusher() }
        } catch {
            acknowledger.finishAndWait()
            throw error
        }
    }

    /// The cursor acknowledgements (and readers) follow: durable, or written in relaxed mode.
    var acknowledged: UInt64 {
        switch mode {
        case .durable: durable
        case .relaxed: written
        }
    }

    /// Refuses new appends, writes and flushes everything staged, and returns
    /// once the flusher has stopped and both threads have exited (so that what
    /// they held, the ring's mapping included, can go). Appends already staged
    /// are acknowledged.
    func close() async {
        state.withLock { $0.closing = true }
        ringSpace.spaceFreed()  // appends waiting for space look again, and are refused
        wake.signal()
        await StopHandshake.stop(request: { continuation in state.withLock { $0.stop.register(continuation) } })
        // Every acknowledgement (or failure) handed over before the stop has been delivered
        // once the acknowledger has handled its finish notice and exited.
        await acknowledger.thread.exited()
        await flusherThread.exited()
    }

    /// Lets appends reuse ring space before `position` (already checkpointed
    /// durably) and forgets the index entries of the records there.
    ///
    /// Why in slices: every append takes the writer's lock, and forgetting
    /// the entries of 10,000 streams in one lock section held it 2-8 ms, a
    /// stall of every append at each checkpoint. The streams' entries go first,
    /// ``releaseSlice`` streams per lock section, while the checkpoint has not
    /// moved (so no append can reuse the space yet); then the checkpoint and
    /// the global list of positions move together in one short section.
    ///
    /// Why the work outside the lock: the sections together still held it
    /// 5-10 ms per checkpoint over 10,000 streams (0.5-1 µs a stream), taken
    /// back at once after each release, so that the flusher, woken by the
    /// release, found it taken again: appends made during a release waited for
    /// all of it (a trace of a half-load run put about a fifth of the appends
    /// slower than 1 ms in that window). Now the names are hashed before the
    /// lock, the emptied arrays are freed after it, and the cache misses of a
    /// slice overlap (``JournalIndex/forgetEntries(before:of:released:)``): a
    /// median 2.0 ms in the lock per checkpoint over 10,000 streams (1.6-4.8 ms
    /// over 28 checkpoints), in sections of about 13 µs. They are still taken
    /// back to back, so appends still wait behind a release: the bench's stall
    /// report puts 16-29 % of the appends slower than 1 ms at half load beside
    /// one (docs/ARCHITECTURE.md, "The lock every append takes").
    ///
    /// Not `sched_yield` between slices: on a busy machine it pushes this
    /// background thread (long time slice, see ``BackgroundThread``) far back
    /// at every slice, and a release took seconds while the ring filled
    /// (a checkpoint of 3.1 s and 64 appends waiting for space, with a
    /// compiler running beside the bench).
    func releaseSpace(before position: UInt64, streams: some Collection<String>) {
        var hashed: [(name: String, hash: UInt64)] = []
        hashed.reserveCapacity(Self.releaseSlice)
        var released: [[StreamState.RingEntry]] = []
        var rest = streams[...]
        while !rest.isEmpty {
            let slice = rest.prefix(Self.releaseSlice)
            rest = rest[slice.endIndex...]
            hashed.removeAll(keepingCapacity: true)
            for name in slice { hashed.append((name, StreamTable.hash(name, seed: streamHashSeed))) }
            let behind = state.withLock { s in
                guard position > s.checkpoint else { return true }
                // The table (and its seed) is the one recovery built: never replaced, so
                // the hashes taken before the lock find every stream.
                precondition(s.index.streams.hashSeed == streamHashSeed, "the writer's stream table was replaced")
                s.index.forgetEntries(before: position, of: hashed, released: &released)
                return false
            }
            released.removeAll(keepingCapacity: true)  // frees the emptied arrays outside the lock
            if behind { return }
        }
        let moved = state.withLock { s in
            guard position > s.checkpoint else { return false }
            s.checkpoint = position
            s.index.forgetEventPositions(before: position)
            return true
        }
        if moved { ringSpace.spaceFreed() }
    }

    /// Streams whose ring entries ``releaseSpace(before:streams:)`` forgets per
    /// lock section: about 15-30 µs of work on a small processor.
    static let releaseSlice = 64

    /// The failure that poisoned the writer, if any.
    var failure: RingstoreError? { state.withLock { $0.failure } }
}
