import Synchronization
import Testing
@testable import Ringstore

/// The stop handshake alone: a caller that asks before the stop is resumed by
/// it; one that asks after it is resumed at once.
@Suite struct StopHandshakeTests {
    final class Loop: Sendable {
        struct State: ~Copyable {
            var asked = 0
            var stop = StopHandshake()
        }
        let state = Synchronization.Mutex(State())
    }

    @Test func callersBeforeAndAfterTheStopAreResumed() async {
        let loop = Loop()
        let asked = AsyncStream<Void>.makeStream()
        let early = Task {
            await StopHandshake.stop(request: { continuation in
                loop.state.withLock { s in
                    s.asked += 1
                    return s.stop.register(continuation)
                }
            }, wake: { asked.continuation.yield() })
        }
        for await _ in asked.stream { break }  // the early caller has registered
        let waiters = loop.state.withLock { $0.stop.finish() }
        #expect(waiters.count == 1)
        for waiter in waiters { waiter.resume() }
        await early.value
        // After the stop: registered nowhere, resumed at once, and no wake.
        await StopHandshake.stop(request: { continuation in loop.state.withLock { $0.stop.register(continuation) } },
                                 wake: { Issue.record("a stopped loop was woken") })
        #expect(loop.state.withLock { $0.stop.stopped && $0.asked == 1 })
    }
}
