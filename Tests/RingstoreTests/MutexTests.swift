import Dispatch
import Testing
@testable import Ringstore

/// The library's lock, plain and spinning (the journal writer's): under
/// contention from more threads than processors each section runs alone, and
/// the value a section leaves is what the next one finds.
@Suite struct MutexTests {
    /// A value that only the lock's sections touch; not atomic, so a section
    /// that ran beside another would lose increments.
    struct Tally: ~Copyable {
        var count = 0
        var inside = 0
        var overlaps = 0
    }

    static func contend(_ lock: Ringstore.Mutex<Tally>, threads: Int, sectionsPerThread: Int) {
        DispatchQueue.concurrentPerform(iterations: threads) { _ in
            for _ in 0..<sectionsPerThread {
                lock.withLock { tally in
                    tally.inside += 1
                    if tally.inside != 1 { tally.overlaps += 1 }
                    tally.count += 1
                    tally.inside -= 1
                }
            }
        }
    }

    @Test(arguments: [false, true])
    func sectionsNeverOverlap(spinning: Bool) {
        let lock = Ringstore.Mutex(Tally(), spinning: spinning)
        Self.contend(lock, threads: 8, sectionsPerThread: 20_000)
        let (count, overlaps) = lock.withLock { ($0.count, $0.overlaps) }
        #expect(count == 8 * 20_000)
        #expect(overlaps == 0)
    }

    /// A thread that finds the spinning lock held for longer than it spins
    /// (most likely: the holder waits for it to have started) goes on once the
    /// holder lets go, and finds what the holder's section left.
    @Test func aWaiterBehindALongSectionGoesOnAfterIt() {
        let lock = Ringstore.Mutex(0, spinning: true)
        let holding = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            lock.withLock { value in
                holding.signal()
                release.wait()  // held until the other thread is waiting for it
                value = 1
            }
        }
        holding.wait()
        DispatchQueue.global().async {
            let seen = lock.withLock { value -> Int in
                value += 1
                return value
            }
            #expect(seen == 2)
            done.signal()
        }
        release.signal()
        done.wait()
        #expect(lock.withLock { $0 } == 2)
    }
}
