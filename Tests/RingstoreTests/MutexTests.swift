import Dispatch
import Testing
@testable import Ringstore

/// The library's lock, plain and spinning (the journal writer's): under
/// contention from more threads than processors (so spinning threads run out
/// of tries and sleep, and unlocks wake them) each section runs alone, and
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
}
