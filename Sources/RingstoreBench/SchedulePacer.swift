import CRingstoreSupport
import Dispatch
import Foundation
import HeapModule
import Ringstore

/// Wakes the writers of `ringstore bench --rate` at their due times, from one
/// thread of its own.
///
/// Why not `Task.sleep(until:)`: on Linux each such sleep is a libdispatch timer
/// source. Arming one writes to the dispatch manager's event descriptor, and the
/// manager, a thread of higher priority than the concurrency pool's, wakes to
/// re-arm its `timerfd`. At 78,000 appends a second that is a write, a wake-up
/// and a preemption of a pool thread (one that runs appends) per append: the
/// load generator taking the processor from what it measures. Here a writer
/// due later only goes into a heap, and one thread sleeps to the earliest due
/// time and resumes every writer due by then.
///
/// Its lock is an `NSLock` (a `pthread_mutex_t`), not `Synchronization.Mutex`,
/// for the reason the library's own `Mutex` gives: a priority-inheritance
/// futex hands itself to waiting threads that may not run for milliseconds.
final class SchedulePacer: @unchecked Sendable {
    // @unchecked Sendable: `locked` is only touched under `lock`.
    /// A writer waiting for its due time, ordered by it.
    private struct Waiter: Comparable {
        let due: Int64
        let writer: CheckedContinuation<Void, Never>
        static func < (a: Waiter, b: Waiter) -> Bool { a.due < b.due }
        static func == (a: Waiter, b: Waiter) -> Bool { a.due == b.due }
    }

    private struct State {
        var waiting = Heap<Waiter>()
        /// The due time the pacer sleeps until (`Int64.max`: until woken), nil while awake.
        var sleepingUntil: Int64?
        var stopping = false
    }

    private let lock = NSLock()
    private var locked = State()
    private let bell = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)

    init() {
        // Named from inside: on Linux, `Thread.name` set before `start()` never reaches
        // the system thread, which then shows in `top -H` and `perf` under the name of
        // the concurrency pool thread that created it.
        let thread = Thread { [self] in
            rs_set_thread_name("rs-bench-pacer")
            run()
        }
        thread.start()
    }

    /// Returns at `due` (monotonic nanoseconds) or soon after; at once if it has passed.
    func wait(until due: Int64) async {
        await withCheckedContinuation { writer in
            let wake = withState { s -> Bool in
                s.waiting.insert(Waiter(due: due, writer: writer))
                // Wake the pacer only when it sleeps past this writer's due time.
                guard let until = s.sleepingUntil, due < until else { return false }
                s.sleepingUntil = nil
                return true
            }
            if wake { bell.signal() }
        }
    }

    /// Resumes every writer still waiting at once (a run that failed does not
    /// wait out the schedule), then stops the thread and returns once it has.
    func stop() {
        withState { $0.stopping = true }
        bell.signal()
        finished.wait()
    }

    private func withState<Result>(_ body: (inout State) -> Result) -> Result {
        lock.lock()
        defer { lock.unlock() }
        return body(&locked)
    }

    private func run() {
        var due: [CheckedContinuation<Void, Never>] = []
        while true {
            let now = monotonicNanoseconds()
            let until: Int64? = withState { s in
                s.sleepingUntil = nil
                while let first = s.waiting.min, first.due <= now || s.stopping { due.append(s.waiting.removeMin().writer) }
                if !due.isEmpty { return nil }
                if s.stopping { return 0 }
                let until = s.waiting.min?.due ?? .max
                s.sleepingUntil = until
                return until
            }
            guard let until else {
                for writer in due { writer.resume() }
                due.removeAll(keepingCapacity: true)
                continue
            }
            if until == 0 { break }
            if until == .max {
                bell.wait()
            } else {
                _ = bell.wait(timeout: .now() + .nanoseconds(Int(until - now)))
            }
        }
        finished.signal()
    }
}
