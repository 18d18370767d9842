import Synchronization

/// Runs one body over the items `0..<count` on several threads ("lanes") at
/// once, each thread taking the next item from a shared counter until none is
/// left. The calling thread is lane 0; the others are ``BackgroundThread``s.
/// The first error stops every lane before its next item and is thrown once
/// all have returned.
///
/// Why dedicated threads rather than `DispatchQueue.concurrentPerform` or a
/// task group: the callers (the offline tool's rewrite, removing a tree of
/// files, the segment mover's batches while checkpoints wait for it) are
/// synchronous and block in system calls (creating, writing and unlinking
/// files) for much of an item; on the concurrency pool, which has
/// only as many threads as processors, they would hold its threads that long.
///
/// The body receives the lane's number, so that each lane can keep state of its
/// own (buffers, counters) that no other thread touches.
enum ParallelLanes {
    /// What the lanes share: the next item to take and the first failure.
    private final class Work: Sendable {
        let count: Int
        let body: @Sendable (_ lane: Int, _ item: Int) throws -> Void
        let next = Atomic<Int>(0)
        /// Items finished, for progress reports.
        let done = Atomic<Int>(0)
        let failure = Mutex<(any Error)?>(nil)
        /// Set once ``failure`` holds an error. Checked before every item instead of
        /// taking ``failure``'s lock: sixteen threads taking one lock per item spun in
        /// its slow path (a twentieth of a compaction's CPU on 2 cores, 43,000 files unlinked).
        let failed = Atomic<Bool>(false)
        /// Lanes that have returned. Each adds itself with release ordering and the caller
        /// reads the count with acquire ordering after the join, so that everything a lane
        /// wrote (its own state, the items' results) is visible to the caller in a way
        /// ThreadSanitizer sees too (it does not see the join's semaphore).
        let lanesReturned = Atomic<Int>(0)

        init(count: Int, body: @escaping @Sendable (Int, Int) throws -> Void) {
            self.count = count
            self.body = body
        }

        func run(lane: Int, between: () -> Void = {}) {
            defer { lanesReturned.wrappingAdd(1, ordering: .releasing) }
            while !failed.load(ordering: .acquiring) {
                let item = next.wrappingAdd(1, ordering: .relaxed).oldValue
                guard item < count else { return }
                do {
                    try body(lane, item)
                    done.wrappingAdd(1, ordering: .relaxed)
                    between()
                } catch {
                    failure.withLock { if $0 == nil { $0 = error } }
                    failed.store(true, ordering: .releasing)
                }
            }
        }
    }

    /// Runs `body(lane, item)` for every item in `0..<count` on up to `lanes`
    /// threads (fewer if there are fewer items, or if the system refuses more
    /// threads: the running lanes then do the rest). `progress(itemsDone)` is
    /// called on the calling thread after each of its own items. `background`:
    /// the lanes' threads get the background time slice (``BackgroundThread``).
    ///
    /// Returns how many lanes ran. Throws the first error a body threw.
    @discardableResult
    static func run(count: Int, lanes: Int, owner: String, name: String = "rs-lane", background: Bool = false,
                    progress: (Int) -> Void = { _ in },
                    _ body: @escaping @Sendable (_ lane: Int, _ item: Int) throws -> Void) throws -> Int {
        let work = Work(count: count, body: body)
        var started: [BackgroundThread] = []
        for lane in 1..<max(1, min(lanes, count)) {
            let thread = BackgroundThread(name: name, owner: owner, background: background)
            do {
                try thread.start { work.run(lane: lane) }
                started.append(thread)
            } catch {
                break  // no more threads to be had: the running lanes do the rest
            }
        }
        work.run(lane: 0) { progress(work.done.load(ordering: .relaxed)) }
        for thread in started { thread.waitUntilExited() }
        let returned = work.lanesReturned.load(ordering: .acquiring)
        assert(returned == started.count + 1, "\(returned) of \(started.count + 1) lanes returned")
        if let error = work.failure.withLock({ $0 }) { throw error }
        return started.count + 1
    }
}
