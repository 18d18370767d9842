import Synchronization

/// Appends waiting for ring space. They wake together as soon as a checkpoint
/// frees some (``spaceFreed()``), and every ``tickNanoseconds`` (10 ms) meanwhile, so
/// that each can see whether its wait (`journalFullWait`, which may change
/// while it waits) has run out, or whether the writer closed or failed.
///
/// Why not each append on a timer of its own, as before (a 1 ms sleep between
/// looks at the ring): while the ring stays full for seconds (checkpoints
/// waiting for the segment mover, docs/ARCHITECTURE.md), 64 writers woke
/// 64,000 times a second, and their timers, wake-ups and looks took about half
/// a processor (`perf record` of a 100,000-stream bench during such a hold) from
/// the mover that the hold waits for. Now one timer serves every waiter, at a
/// tenth of the pace, and a checkpoint wakes them at once rather than up to a
/// millisecond later.
///
/// No wake-up is lost: an append reads ``generation`` before its last look at
/// the ring and waits only if it has not changed since; a checkpoint changes
/// it (after moving the checkpoint) before waking the waiters.
final class RingSpaceWaiters: Sendable {
    private struct State: ~Copyable {
        var generation: UInt64 = 0
        var waiting: [UnsafeContinuation<Void, Never>] = []
        /// Whether a timer task is running (it ends once nobody waits).
        var ticking = false
    }
    private let state = Mutex(State())

    /// How often waiters wake without a checkpoint: 10 ms, unless a test says otherwise.
    let tickNanoseconds: UInt64

    init(tickNanoseconds: UInt64 = 10_000_000) {
        self.tickNanoseconds = tickNanoseconds
    }

    /// Changes whenever ring space is freed.
    var generation: UInt64 { state.withLock { $0.generation } }

    /// Returns once ring space is freed after `generation` was read (at once if
    /// it was already), or at the next tick.
    func wait(since generation: UInt64) async {
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
            let (waits, startTimer) = state.withLock { s -> (Bool, Bool) in
                guard s.generation == generation else { return (false, false) }
                s.waiting.append(continuation)
                let startTimer = !s.ticking
                s.ticking = true
                return (true, startTimer)
            }
            if !waits { continuation.resume() }
            if startTimer { Task.detached { await self.tick() } }
        }
    }

    /// Wakes every waiter: ring space was freed (called after the checkpoint moved).
    func spaceFreed() {
        var woken: [UnsafeContinuation<Void, Never>] = []
        state.withLock { s in
            s.generation &+= 1
            swap(&woken, &s.waiting)
        }
        for continuation in woken { continuation.resume() }
    }

    /// Appends waiting now (tests).
    var waitingCount: Int { state.withLock { $0.waiting.count } }

    /// The timer: wakes every waiter each tick until a tick finds none.
    private func tick() async {
        while true {
            try? await Task.sleep(nanoseconds: tickNanoseconds)
            var woken: [UnsafeContinuation<Void, Never>] = []
            state.withLock { s in
                swap(&woken, &s.waiting)
                if woken.isEmpty { s.ticking = false }
            }
            guard !woken.isEmpty else { return }
            for continuation in woken { continuation.resume() }
        }
    }
}
