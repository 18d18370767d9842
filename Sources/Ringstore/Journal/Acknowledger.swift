import Dispatch
import Synchronization

/// Resumes acknowledged appends on a thread of its own — the "chaser" of
/// EventStore's writer, which follows the durable cursor and acknowledges.
///
/// Resuming a few dozen continuations takes tens of microseconds; done on the
/// flusher thread it would delay the next write and flush by as much, and the
/// flush cycle is what bounds single-event appends. Items are handled in order,
/// so a stop notice always comes after every acknowledgement before it.
final class Acknowledger: Sendable {
    enum Item: Sendable {
        /// Resume these appends with their results.
        case acknowledge([JournalWriter.Waiter])
        /// Fail these appends.
        case fail([JournalWriter.Waiter], RingstoreError)
        /// Run this (e.g. tell `close()` the writer has stopped), then keep going.
        case notify(@Sendable () -> Void)
        /// Stop the thread once everything before is done.
        case finish
    }

    private struct Queue: ~Copyable {
        var items: [Item] = []
        var sleeping = false
    }

    private let queue = Mutex(Queue())
    private let wake = DispatchSemaphore(value: 0)
    let appendCount = Atomic<UInt64>(0)
    let eventCount = Atomic<UInt64>(0)
    /// Woken after every batch of acknowledgements: subscriptions wait on it.
    let changes = ChangeNotifier()
    /// The thread that resumes the appends.
    let thread: BackgroundThread

    /// Starts the thread; `owner` is the journal's path (see ``BackgroundThread/owner``).
    init(owner: String) throws {
        thread = BackgroundThread(name: "rs-acknowledger", owner: owner)
        try thread.start { [self] in run() }
    }

    /// Stops the thread (after everything submitted so far) and blocks until it
    /// has exited: for a writer whose own thread could not start.
    func finishAndWait() {
        submit(.finish)
        thread.waitUntilExited()
    }

    func submit(_ item: Item) {
        let wasSleeping = queue.withLock { q in
            q.items.append(item)
            defer { q.sleeping = false }
            return q.sleeping
        }
        if wasSleeping { wake.signal() }
    }

    private func run() {
        var batch: [Item] = []
        while true {
            queue.withLock { q in
                swap(&batch, &q.items)
                q.sleeping = batch.isEmpty
            }
            if batch.isEmpty {
                wake.wait()
                continue
            }
            for item in batch {
                switch item {
                case .acknowledge(let waiters):
                    // Count first, so that `stats()` read right after an append returns includes it.
                    let events = waiters.reduce(UInt64(0)) { $0 + $1.result.lastVersion - $1.result.firstVersion + 1 }
                    appendCount.add(UInt64(waiters.count), ordering: .relaxed)
                    eventCount.add(events, ordering: .relaxed)
                    for waiter in waiters {
                        let outcome = JournalWriter.Outcome.appended(waiter.result)
                        SanitizerAnnotations.resumingTask { waiter.continuation.resume(returning: outcome) }
                    }
                    changes.notify()
                case .fail(let waiters, let error):
                    for waiter in waiters { waiter.continuation.resume(throwing: error) }
                case .notify(let body):
                    body()
                case .finish:
                    return  // the thread exits: everything submitted before is done
                }
            }
            batch.removeAll(keepingCapacity: true)
        }
    }
}
