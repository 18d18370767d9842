import Synchronization
import Testing
@testable import Ringstore

/// Appends waiting for ring space: a checkpoint wakes every one of them, a
/// wait that began after space was freed does not wait, and without
/// checkpoints the waiters' timer wakes them so that each can look at its
/// own deadline.
@Suite struct RingSpaceWaitersTests {
    /// Waiters that have returned.
    final class Woken: Sendable {
        let count = Atomic<Int>(0)
        func load() -> Int { count.load(ordering: .relaxed) }
    }

    /// Starts `count` waiters on `waiters`, each counting itself in `woken` once it returns.
    static func startWaiting(_ count: Int, on waiters: RingSpaceWaiters, woken: Woken) -> [Task<Void, Never>] {
        let generation = waiters.generation
        return (0..<count).map { _ in
            Task {
                await waiters.wait(since: generation)
                woken.count.add(1, ordering: .relaxed)
            }
        }
    }

    @Test func spaceFreedWakesEveryWaiterAtOnce() async throws {
        // A timer of an hour: only the freed space can wake them within the test.
        let waiters = RingSpaceWaiters(tickNanoseconds: 3_600_000_000_000)
        let woken = Woken()
        let tasks = Self.startWaiting(16, on: waiters, woken: woken)
        try await waitUntil("sixteen appends waiting") { waiters.waitingCount == 16 }
        #expect(woken.load() == 0)
        let before = waiters.generation
        waiters.spaceFreed()
        for task in tasks { await task.value }
        #expect(woken.load() == 16)
        #expect(waiters.waitingCount == 0)
        #expect(waiters.generation != before)
    }

    @Test func aWaitBegunAfterSpaceWasFreedReturnsAtOnce() async {
        let waiters = RingSpaceWaiters(tickNanoseconds: 3_600_000_000_000)
        let generation = waiters.generation  // read before the (imagined) look at the ring
        waiters.spaceFreed()  // a checkpoint between that look and the wait
        await waiters.wait(since: generation)
        #expect(waiters.waitingCount == 0)
    }

    @Test func withoutCheckpointsTheTimerWakesTheWaitersAgainAndAgain() async throws {
        let waiters = RingSpaceWaiters(tickNanoseconds: 1_000_000)
        let woken = Woken()
        for task in Self.startWaiting(8, on: waiters, woken: woken) { await task.value }
        #expect(woken.load() == 8)
        // The timer stopped once nobody waited; a later waiter starts it again.
        for task in Self.startWaiting(3, on: waiters, woken: woken) { await task.value }
        #expect(woken.load() == 11)
        #expect(waiters.waitingCount == 0)
    }
}
