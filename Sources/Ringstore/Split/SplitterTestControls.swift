import Synchronization

/// Test-only controls of the ``Splitter``: hold its scan at a position, ask
/// for a checkpoint now rather than when one falls due, or hold off those that
/// fall due by themselves. Tests use them to
/// put a checkpoint exactly where a race needs it (inside an append, between
/// two steps of a read) instead of waiting for the splitter's own timing.
///
/// Internal on purpose (reachable through `@testable import` only). Unused,
/// they cost the splitter one relaxed atomic load per scan round, one per
/// pass of its loop and one more when a checkpoint falls due.
final class SplitterTestControls: Sendable {
    /// The scan stops at the first record boundary at or after this position
    /// (`.max`: no limit). A close lifts it, since it splits everything acknowledged.
    let scanLimit = Atomic<UInt64>(.max)

    /// While set, no checkpoint falls due by itself (a test's request and a close
    /// still write one): entries written for readers stay past the checkpoint
    /// however long a loaded machine takes.
    let checkpointsHeld = Atomic<Bool>(false)

    private struct Waiter {
        /// The checkpoint must reach this position.
        var goal: UInt64
        var continuation: CheckedContinuation<Void, Never>
    }
    private let anyWaiting = Atomic<Bool>(false)
    private let waiters = Mutex<[Waiter]>([])

    /// Where the scan may go: the acknowledged cursor, or less while ``scanLimit`` is set.
    @inline(__always)
    func scanEnd(_ acknowledged: UInt64) -> UInt64 {
        min(acknowledged, scanLimit.load(ordering: .relaxed))
    }

    /// Called on each pass of the splitter's loop: resumes the waiters whose goal
    /// the journal's checkpoint has reached, and says whether one wants a
    /// checkpoint now (the scan has reached its goal, the checkpoint has not).
    @inline(__always)
    func checkpointWanted(scanned: UInt64, checkpoint: UInt64) -> Bool {
        guard _slowPath(anyWaiting.load(ordering: .relaxed)) else { return false }
        return slowCheckpointWanted(scanned: scanned, checkpoint: checkpoint)
    }

    @inline(never)
    private func slowCheckpointWanted(scanned: UInt64, checkpoint: UInt64) -> Bool {
        let (done, wanted): ([Waiter], Bool) = waiters.withLock { w in
            let done = w.filter { checkpoint >= $0.goal }
            w.removeAll { checkpoint >= $0.goal }
            if w.isEmpty { anyWaiting.store(false, ordering: .relaxed) }
            return (done, w.contains { scanned >= $0.goal })
        }
        for waiter in done { waiter.continuation.resume() }
        return wanted
    }

    /// Registers a caller of ``Splitter/checkpointForTesting()``.
    func wait(goal: UInt64, continuation: CheckedContinuation<Void, Never>) {
        waiters.withLock { w in
            w.append(Waiter(goal: goal, continuation: continuation))
            anyWaiting.store(true, ordering: .relaxed)
        }
    }

    /// Resumes every waiter (the splitter stopped).
    func resumeAll() {
        let all = waiters.withLock { w in
            defer {
                w.removeAll()
                anyWaiting.store(false, ordering: .relaxed)
            }
            return w
        }
        for waiter in all { waiter.continuation.resume() }
    }
}

extension Splitter {
    /// Tests only: splits and checkpoints everything acknowledged now (up to
    /// ``SplitterTestControls/scanLimit`` while it is set) and returns once the
    /// journal's checkpoint is there — or once the splitter has stopped. While
    /// the splitter is paused, it waits for it to resume.
    func checkpointForTesting() async {
        let goal = testing.scanEnd(acknowledged)
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            testing.wait(goal: goal, continuation: continuation)
            if isStopped { testing.resumeAll() } else { splitterDoorbell.ring() }
        }
    }
}
