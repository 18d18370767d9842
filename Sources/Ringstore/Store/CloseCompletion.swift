import Synchronization

/// The outcome of a store's one close, awaited by any caller of `close()`
/// that came while it was under way (see ``EventStore/close()``).
final class CloseCompletion: Sendable {
    private struct State: ~Copyable {
        var done = false
        var failure: (any Error)?
        var waiters: [CheckedContinuation<Void, any Error>] = []
    }
    private let state = Mutex(State())

    /// Records how the close ended and resumes everyone waiting for it.
    func finish(_ failure: (any Error)?) {
        let waiters = state.withLock { s in
            s.done = true
            s.failure = failure
            defer { s.waiters.removeAll() }
            return s.waiters
        }
        for waiter in waiters {
            if let failure { waiter.resume(throwing: failure) } else { waiter.resume() }
        }
    }

    /// Returns once the close has ended, throwing what it threw.
    func waitUntilDone() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let outcome: Result<Void, any Error>? = state.withLock { s in
                guard s.done else {
                    s.waiters.append(continuation)
                    return nil
                }
                return s.failure.map { .failure($0) } ?? .success(())
            }
            if let outcome { continuation.resume(with: outcome) }
        }
    }
}
