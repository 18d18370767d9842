import Dispatch
import Synchronization

/// Resumes acknowledged appends — the "chaser" of EventStore's writer, which
/// follows the durable cursor and acknowledges — on a thread of its own for
/// large batches, on the flusher's own thread for small ones
/// (``acknowledge(_:)``).
///
/// Why both: resuming a continuation enqueues its task on the concurrency
/// pool, about a microsecond each, so a large batch (hundreds of writers)
/// resumed on the flusher thread would delay the next write and flush by
/// hundreds of microseconds, and the flush cycle is what bounds single-event
/// appends. A small batch costs the flusher less than handing it over: waking
/// this thread and waiting for it to get a processor, on a two-processor box
/// shared with the pool and the splitter, took longer than resuming a few
/// dozen continuations (docs/ARCHITECTURE.md, "Who resumes the appends").
/// Items are handled in order, and a batch is resumed on the flusher only
/// when nothing handed over before is queued or being resumed, so a stop
/// notice always comes after every acknowledgement before it.
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

    /// The largest batch ``acknowledge(_:)`` resumes on the calling thread: as many
    /// as the bench's 64 writers (whose batches are 30-40 appends), while the
    /// batches of 256 writers (about 100) still go to the thread.
    static let inlineLimit = 64

    /// Resumes `waiters` (acknowledged) on the calling thread if they are at most
    /// ``inlineLimit`` and this thread is idle with nothing queued, so that
    /// nothing handed over earlier is resumed after them; otherwise hands them
    /// over (``submit(_:)``). Called by the flusher only, the one thread that
    /// submits, so no item can be queued between the look and the resumption.
    func acknowledge(_ waiters: [JournalWriter.Waiter]) {
        guard waiters.count <= Self.inlineLimit, isIdle else {
            submit(.acknowledge(waiters))
            return
        }
        inlineBatches.add(1, ordering: .relaxed)
        resume(waiters)
    }

    /// Whether the thread waits for work with nothing queued: everything handed
    /// over so far has been resumed.
    var isIdle: Bool { queue.withLock { $0.sleeping && $0.items.isEmpty } }

    /// Batches resumed on the flusher's thread (``acknowledge(_:)``), for tests and measurements.
    let inlineBatches = Atomic<UInt64>(0)

    /// Counts and resumes acknowledged appends, then wakes subscriptions.
    private func resume(_ waiters: [JournalWriter.Waiter]) {
        // Count first, so that `stats()` read right after an append returns includes it.
        let events = waiters.reduce(UInt64(0)) { $0 + $1.result.lastVersion - $1.result.firstVersion + 1 }
        appendCount.add(UInt64(waiters.count), ordering: .relaxed)
        eventCount.add(events, ordering: .relaxed)
        for waiter in waiters {
            let outcome = JournalWriter.Outcome.appended(waiter.result)
            SanitizerAnnotations.resumingTask { waiter.continuation.resume(returning: outcome) }
        }
        changes.notify()
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
                    resume(waiters)
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
