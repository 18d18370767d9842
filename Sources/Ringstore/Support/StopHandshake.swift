/// How a caller stops a background loop and waits for it: the caller marks
/// its request and registers a continuation; the loop, once it has done its
/// last work, marks itself stopped and resumes every registered caller.
///
/// It lives inside the owner's `Mutex`-guarded state (the journal writer's,
/// the splitter's, the checkpointer's), so that a stop request and the flags
/// that go with it (closing, stopping, abandoning) change in one lock section
/// and a caller registering just as the loop stops is never missed: either
/// it registers before ``finish()`` and is handed back by it, or it sees
/// ``stopped`` and resumes itself. Continuations are always resumed outside
/// the lock.
struct StopHandshake: ~Copyable {
    /// True once the loop has stopped: it does no more work.
    private(set) var stopped = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    /// Registers `continuation` to be resumed when the loop stops; returns
    /// false, registering nothing, if it has stopped already (the caller then
    /// resumes it, outside the lock).
    mutating func register(_ continuation: CheckedContinuation<Void, Never>) -> Bool {
        guard !stopped else { return false }
        waiters.append(continuation)
        return true
    }

    /// Marks the loop stopped and hands back the callers to resume (outside the lock).
    mutating func finish() -> [CheckedContinuation<Void, Never>] {
        stopped = true
        defer { waiters = [] }
        return waiters
    }

    /// Asks a loop to stop and returns once it has: `request` runs under the
    /// owner's lock, marks the request and calls ``register(_:)``, returning
    /// its answer; `wake` (outside the lock) then rouses the loop if the caller waits.
    static func stop(request: (CheckedContinuation<Void, Never>) -> Bool, wake: () -> Void = {}) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            if request(continuation) { wake() } else { continuation.resume() }
        }
    }
}
