#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Dispatch
import Synchronization

/// Steps 2 and 3 of an append (see ``JournalWriter``): the flusher thread
/// writes the staged records into the ring, syncs them, and acknowledges the
/// covered appends (a small batch itself, a large one through the acknowledger).
extension JournalWriter {
    /// What the flusher found when it looked under the lock.
    private enum Work {
        /// Nothing staged and no waiter registered.
        case none
        /// A batch whose `pwrite` failed is still owed: nothing newer is taken until it is written.
        case retry
        /// The staged batch, swapped out; the waiters registered with it are in `taken`.
        case batch(StagingBuffer)

        var isNone: Bool {
            if case .none = self { return true }
            return false
        }
    }

    /// How long the flusher may sleep once a pass is done.
    private enum Sleep {
        /// Until an append, `close()` or a failed outside sync wakes it.
        case untilWoken
        /// Until then (monotonic nanoseconds) at the latest: the relaxed flush interval.
        case until(Int64)
    }

    func runFlusher() {
        var pending: [Waiter] = []
        // Swapped with the registered waiters under the lock: taking them costs no
        // allocation there (a copy and `removeAll(keepingCapacity:)` made one per pass).
        var taken: [Waiter] = []
        var oldestUnsynced: Int64 = 0
        var lastSync = monotonicNanoseconds()
        // A batch whose `pwrite` failed: written again before anything newer is taken.
        var unwritten: StagingBuffer?
        var consecutiveFailures = 0
        // The acknowledged cursor when the splitter was last rung.
        var announced = acknowledged
        var groupCommit: GroupCommitPolicy? = nil
        if case .durable(let delay) = mode { groupCommit = GroupCommitPolicy(maxDelayNanoseconds: delay) }
        while true {
            // Set when this pass leaves a batch unsynced to let more appends join it.
            var gatherUntil: Int64? = nil
            var closing = false
            var checkpoint: UInt64 = 0
            let work: Work = state.withLock { s in
                closing = s.closing
                // Read here rather than in a lock section of its own before the write: a
                // checkpoint only moves forward, so an earlier value only zero-fills less.
                checkpoint = s.checkpoint
                s.flusherIdle = false  // awake; only `sleepIfIdle` sets it
                if unwritten != nil { return .retry }  // `spare` still holds it
                if s.staging.isEmpty && s.waiters.isEmpty { return .none }
                swap(&s.staging, &s.spare)
                swap(&s.waiters, &taken)
                return .batch(s.spare)
            }
            do {
                let buffer: StagingBuffer?
                switch work {
                case .none:
                    buffer = nil
                case .retry:
                    buffer = unwritten
                case .batch(let taken):
                    buffer = taken
                }
                if pending.isEmpty {
                    swap(&pending, &taken)
                } else if !taken.isEmpty {
                    pending.append(contentsOf: taken)
                    taken.removeAll(keepingCapacity: true)
                }
                if let buffer, !buffer.isEmpty {
                    unwritten = buffer
                    let freeEnd = checkpoint + ring.capacity
                    let segments = buffer.segments
                    for (i, segment) in segments.enumerated() {
                        try ring.write(buffer.bytes(of: segment), at: segment.position,
                                       zeroFillingPageBefore: i == segments.count - 1 ? freeEnd : nil)
                    }
                    unwritten = nil
                    if written == durable { oldestUnsynced = monotonicNanoseconds() }
                    ringSync.written.store(buffer.endPosition, ordering: .releasing)
                    buffer.reset()
                }
                let repair = ringSync.needsRepair
                if repair || written > durable {
                    let now = monotonicNanoseconds()
                    let due: Bool
                    switch mode {
                    case .durable(let delay):
                        // Sync what this pass wrote at once: the appends staged meanwhile form the
                        // next batch, written and synced as soon as this sync is done. (Writing
                        // further batches first, while appends kept arriving, made a `pwritev` for
                        // every two or three appends and delayed the sync: see "The flusher's
                        // cycle" in docs/ARCHITECTURE.md.) Unless the policy paces syncs after
                        // device stalls (GroupCommitPolicy) and the oldest unsynced write has not
                        // yet waited `maxFlushDelay`.
                        if repair || closing || now - oldestUnsynced >= delay {
                            due = true
                        } else {
                            gatherUntil = groupCommit?.gatherUntil(lastSync: lastSync, now: now)
                            due = gatherUntil == nil
                        }
                    case .relaxed(let interval):
                        due = repair || closing || now - lastSync >= interval
                    }
                    if due {
                        let syncStarted = monotonicNanoseconds()
                        try ringSync.sync()
                        flushCount.add(1, ordering: .relaxed)
                        lastSync = monotonicNanoseconds()
                        let took = lastSync - syncStarted
                        if groupCommit?.synced(nanoseconds: took, endedAt: lastSync) == true { syncStalls.add(1, ordering: .relaxed) }
                        flushObserver.flushed(nanoseconds: took)
                    }
                }
                consecutiveFailures = 0
            } catch {
                if closing || ringSync.lost != nil {
                    fail(with: error, pending: pending)
                    return
                }
                // Not acknowledged, outcome unknown: tell the waiting appends now rather
                // than holding them through the backoff, then retry.
                if !pending.isEmpty {
                    acknowledger.submit(.fail(pending, unknownOutcomeError(error)))
                    pending.removeAll()
                }
                consecutiveFailures += 1
                let backoff = min(500_000_000, 5_000_000 << min(consecutiveFailures - 1, 10))
                _ = wake.wait(timeout: .now() + .nanoseconds(backoff))  // `close()` signals to cut it short
                continue
            }
            if !pending.isEmpty { resumeAcknowledged(&pending) }
            // Also when another thread's sync (a checkpoint's header write) moved the cursor.
            let cursor = acknowledged
            if cursor >= announced + splitterWakeBytes {
                announced = cursor
                splitterDoorbell.ring()
            }
            if case .none = work, closing, written == durable, pending.isEmpty {
                stop()
                return
            }
            if let gatherUntil {
                gatheredBatches.add(1, ordering: .relaxed)
                // Appends staged meanwhile do not wake it: they join the batch at the deadline.
                sleepIfIdle(.until(gatherUntil), wakeForAppends: false)
            } else if let sleep = idleSleep(tookWork: !(work.isNone), pending: !pending.isEmpty, closing: closing, lastSync: lastSync) {
                sleepIfIdle(sleep)
            }
        }
    }

    /// How long the flusher may sleep after a pass, or nil if it has more to do at once.
    private func idleSleep(tookWork: Bool, pending: Bool, closing: Bool, lastSync: Int64) -> Sleep? {
        // More may have been staged meanwhile; and a durable batch still unsynced is synced at once.
        if tookWork || pending || closing || ringSync.needsRepair { return nil }
        guard written > durable else { return .untilWoken }
        switch mode {
        case .durable:
            return nil
        case .relaxed(let interval):
            let deadline = lastSync + interval
            return deadline > monotonicNanoseconds() ? .until(deadline) : nil
        }
    }

    /// Whether the append just staged must wake the flusher (then no longer idle):
    /// not while it gathers a batch until a deadline.
    static func wakesFlusher(_ s: inout State) -> Bool {
        guard s.flusherIdle, s.flusherWokenByAppends else { return false }
        s.flusherIdle = false
        return true
    }

    /// The flusher's only sleep that an append must end: it marks itself idle
    /// under the writer lock, and only if nothing is staged, so an append staged
    /// after that look finds it idle and wakes it (see `stage`), unless it
    /// gathers a batch (`wakeForAppends` false: it then sleeps until the
    /// deadline). A stray wake (a signal from a stage that raced a timeout)
    /// only costs one empty pass.
    private func sleepIfIdle(_ sleep: Sleep, wakeForAppends: Bool = true) {
        let idle = state.withLock { s in
            guard s.staging.isEmpty && s.waiters.isEmpty && !s.closing else { return false }
            s.flusherIdle = true
            s.flusherWokenByAppends = wakeForAppends
            return true
        }
        guard idle else { return }
        switch sleep {
        case .untilWoken:
            wake.wait()
        case .until(let deadline):
            let remaining = max(0, deadline - monotonicNanoseconds())
            _ = wake.wait(timeout: .now() + .nanoseconds(Int(min(remaining, Int64(Int.max)))))
        }
    }

    /// The error for appends whose write or flush failed.
    private func unknownOutcomeError(_ error: any Error) -> RingstoreError {
        RingstoreError(
            .ioError,
            "the journal write or flush for this append failed, so it is not acknowledged; its events may or may not be stored. The store keeps retrying the flush: retry the append with the same event IDs (a retry of a stored append is recognised and succeeds without writing twice)",
            path: ring.file.path.string, cause: error as? RingstoreError)
    }

    /// Acknowledges every waiter the acknowledged cursor now covers (resumed
    /// here or by the acknowledger's thread: ``Acknowledger/acknowledge(_:)``).
    private func resumeAcknowledged(_ pending: inout [Waiter]) {
        let cursor = acknowledged
        if pending.allSatisfy({ $0.lastPosition < cursor }) {
            acknowledger.acknowledge(pending)
            pending.removeAll(keepingCapacity: true)
            return
        }
        let covered = pending.filter { $0.lastPosition < cursor }
        pending.removeAll { $0.lastPosition < cursor }
        if !covered.isEmpty { acknowledger.acknowledge(covered) }
    }

    private func fail(with error: any Error, pending: [Waiter]) {
        let failure = RingstoreError(
            .storeFailed,
            "the journal could not be written or flushed; no further appends are accepted until the store is reopened",
            path: ring.file.path.string, cause: error as? RingstoreError)
        let (queued, stoppedWaiters) = state.withLock { s in
            s.failure = failure
            let queued = s.waiters
            s.waiters.removeAll()
            return (queued, s.stop.finish())
        }
        acknowledger.submit(.fail(pending + queued, failure))
        acknowledger.submit(.notify { for waiter in stoppedWaiters { waiter.resume() } })
        acknowledger.submit(.finish)
    }

    private func stop() {
        let waiters = state.withLock { $0.stop.finish() }
        // After every acknowledgement already handed over.
        acknowledger.submit(.notify { for waiter in waiters { waiter.resume() } })
        acknowledger.submit(.finish)
    }
}
