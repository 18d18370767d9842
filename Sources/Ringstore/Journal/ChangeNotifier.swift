import Synchronization

/// Tells waiting subscribers that more events have been acknowledged.
///
/// A generation counter makes wake-ups impossible to lose: a subscriber notes
/// the generation, reads, and waits only if the generation has not moved since.
/// Waiting is cancellable.
final class ChangeNotifier: Sendable {
    private struct State: ~Copyable {
        var generation: UInt64 = 0
        var nextID = 0
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
    }
    private let state = Mutex(State())

    var generation: UInt64 { state.withLock { $0.generation } }

    /// Subscribers waiting right now (tests wait for one to be waiting before acting).
    var waiterCount: Int { state.withLock { $0.waiters.count } }

    /// Wakes every waiter (called after each batch of acknowledged appends).
    func notify() {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.generation &+= 1
            guard !s.waiters.isEmpty else { return [] }
            defer { s.waiters.removeAll(keepingCapacity: true) }
            return Array(s.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once the generation differs from `seen` (at once if it already
    /// does), or when the task is cancelled.
    func wait(after seen: UInt64) async {
        let id = state.withLock { s -> Int in
            s.nextID += 1
            return s.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { s -> Bool in
                    if s.generation != seen || Task.isCancelled { return true }
                    s.waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }
}
