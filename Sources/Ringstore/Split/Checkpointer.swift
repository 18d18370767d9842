import Synchronization

/// Makes the stream files the splitter wrote durable and then moves the
/// journal's checkpoint, on a thread of its own.
///
/// Why a thread of its own: a checkpoint ends in `syncfs` or a batch of
/// `fdatasync`s that can take tens of milliseconds (far more on an SD card).
/// Done by the splitter, every reader that asked for its stream in that time
/// would wait for it. Handed over here, the splitter goes on scanning the
/// journal and serving readers while the disk catches up.
///
/// One job at a time: the splitter submits the next checkpoint only after the
/// previous one is done. A failed job (an I/O error) is retried after a pause,
/// never skipped: the checkpoint must not pass data that is not durable.
final class Checkpointer: Sendable {
    /// A checkpoint to write: everything before `split` is in stream files, and
    /// `dirty` names the files written since the previous checkpoint.
    struct Job: Sendable {
        var split: UInt64
        /// Stream files written since the previous checkpoint: synced by this one.
        var dirty: [String]
        /// Their catalog numbers, in the same order.
        var dirtyNumbers: [UInt32]
        /// Streams whose records were written anywhere since the previous
        /// checkpoint (each once): their ring entries are released by this one.
        var touched: [String]
        /// The split segments' end when the job was submitted: every entry
        /// before it holds only records before `split`.
        var segmentBoundary: SplitSegment.Link
    }

    private struct State: ~Copyable {
        var job: Job?
        var submitted: ContinuousClock.Instant?
        var stopping = false
        var abandoning = false
        var stop = StopHandshake()
        var failure: RingstoreError?
        /// An attempt at the job is running (its outcome may clear `failure`).
        var attempting = false
    }

    private let journal: Journal
    private let split: SplitStore
    private let globalIndex: GlobalIndex
    private let state = Mutex(State())
    private let doorbell = Doorbell()
    /// Rung after each job (or failed attempt), so the splitter can submit the next.
    private let finished: @Sendable () -> Void
    /// Called after each checkpoint is written (wakes the segment mover).
    private let checkpointed: @Sendable () -> Void
    /// Checkpoints written (stats).
    let completed = Atomic<UInt64>(0)
    private let thread: BackgroundThread
    /// How long each checkpoint took, from its submission to the header write (stats).
    let durations = DurationRecorder()

    init(journal: Journal, split: SplitStore, globalIndex: GlobalIndex,
         finished: @escaping @Sendable () -> Void, checkpointed: @escaping @Sendable () -> Void) throws {
        self.journal = journal
        self.split = split
        self.globalIndex = globalIndex
        self.finished = finished
        self.checkpointed = checkpointed
        thread = BackgroundThread(name: "rs-checkpoint", owner: journal.ring.file.path.string, background: true)
        try thread.start { [self] in run() }
    }

    /// True while a job waits or runs.
    var isBusy: Bool { state.withLock { $0.job != nil } }

    /// The last failure, if the current job has failed at least once.
    var failure: RingstoreError? { state.withLock { $0.failure } }

    /// The last failure, only while no attempt at the job is running: one that
    /// is may be succeeding, and a close must then wait for it rather than
    /// give up on the earlier attempt's error.
    var failureBetweenAttempts: RingstoreError? { state.withLock { $0.attempting ? nil : $0.failure } }

    /// Queues a checkpoint; the caller must have seen ``isBusy`` false.
    func submit(_ job: Job) {
        state.withLock { s in
            precondition(s.job == nil, "a checkpoint is already in progress")
            s.job = job
            s.submitted = .now
        }
        doorbell.ring()
    }

    /// Finishes the job in progress (retrying while it fails, unless `abandon`
    /// is called meanwhile) and stops.
    func stop() async {
        await requestStop { $0.stopping = true }
        await thread.exited()
    }

    /// Stops without starting another step of the job in progress, as a crash
    /// would (the step running, if any, completes first).
    func abandon() async {
        await requestStop { $0.abandoning = true }
        await thread.exited()
    }

    /// Stops at once and blocks until the thread has exited: for a splitter
    /// whose own thread could not start (the checkpointer has no job yet).
    func abandonAndWait() {
        state.withLock { $0.abandoning = true }
        doorbell.ring()
        thread.waitUntilExited()
    }

    private func requestStop(_ mark: (inout State) -> Void) async {
        await StopHandshake.stop(request: { continuation in
            state.withLock { s in
                mark(&s)
                return s.stop.register(continuation)
            }
        }, wake: { doorbell.ring() })
    }

    private func run() {
        while true {
            let (job, stopping, abandoning) = state.withLock { ($0.job, $0.stopping, $0.abandoning) }
            if abandoning || (stopping && job == nil) {
                let waiters = state.withLock { $0.stop.finish() }
                for waiter in waiters { waiter.resume() }
                return
            }
            guard let job else {
                doorbell.wait(timeoutNanoseconds: 100_000_000) { state.withLock { $0.job == nil && !$0.stopping && !$0.abandoning } }
                continue
            }
            state.withLock { $0.attempting = true }
            do {
                guard try write(job) else {  // abandoned part-way
                    state.withLock { $0.attempting = false }
                    continue
                }
                let submitted = state.withLock { s in
                    s.job = nil
                    s.attempting = false
                    s.failure = nil
                    return s.submitted
                }
                if let submitted { durations.record(submitted.duration(to: .now)) }
                completed.add(1, ordering: .relaxed)
                finished()
            } catch {
                let failure = (error as? RingstoreError) ?? RingstoreError(.ioError, "checkpoint failed: \(error)")
                // Closing gives up (the store reports the failure; the journal still holds
                // everything, so the next open replays it); otherwise retry after a pause,
                // as a full disk may clear.
                let giveUp = state.withLock { s in
                    s.attempting = false
                    s.failure = failure
                    if s.stopping { s.abandoning = true }
                    return s.stopping
                }
                finished()
                if !giveUp { doorbell.wait(timeoutNanoseconds: 100_000_000) { !state.withLock { $0.abandoning } } }
            }
        }
    }

    /// Returns false if abandoned part-way.
    private func write(_ job: Job) throws -> Bool {
        let aborted = { self.state.withLock { $0.abandoning } }
        let observer = journal.checkpointObserver
        // The checkpoint never passes the durable cursor (relaxed mode may split past it).
        try observer.timed(.journalSync) { try journal.writer.syncNow(upTo: job.split) }
        if aborted() { return false }
        try observer.timed(.streamFiles) { try split.directory.syncAll(dirty: job.dirty) }
        // Chains the splitter moved whole into these files (a direct write) may go now.
        split.segments.forgetMoved(job.dirtyNumbers)
        try observer.timed(.segments) { try split.segments.sync() }
        if aborted() { return false }
        try observer.timed(.catalog) { try split.catalog.sync() }
        try observer.timed(.globalIndex) { try globalIndex.sync() }
        if aborted() { return false }
        try journal.advanceCheckpoint(to: job.split, streams: job.touched)
        split.segments.checkpointCompleted(through: job.segmentBoundary)
        // Stream-file blocks before the checkpoint are durable now: opening a file
        // checks only blocks from here on (see `StreamFile.recover`).
        split.directory.replayFrom.store(job.split, ordering: .releasing)
        checkpointed()
        return true
    }
}
