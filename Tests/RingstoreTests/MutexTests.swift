import Dispatch
import Foundation
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

    /// Runs `threads` threads of their own (not a pool capped at the processor
    /// count), each taking the lock `sectionsPerThread` times.
    static func contend(_ lock: Ringstore.Mutex<Tally>, threads: Int, sectionsPerThread: Int) {
        let finished = DispatchSemaphore(value: 0)
        for _ in 0..<threads {
            Thread {
                for _ in 0..<sectionsPerThread {
                    lock.withLock { tally in
                        tally.inside += 1
                        if tally.inside != 1 { tally.overlaps += 1 }
                        tally.count += 1
                        tally.inside -= 1
                    }
                }
                finished.signal()
            }.start()
        }
        for _ in 0..<threads { finished.wait() }
    }

    @Test(arguments: [false, true])
    func sectionsNeverOverlap(spinning: Bool) {
        let lock = Ringstore.Mutex(Tally(), spinning: spinning)
        Self.contend(lock, threads: 8, sectionsPerThread: 100_000)
        let (count, overlaps) = lock.withLock { ($0.count, $0.overlaps) }
        #expect(count == 8 * 100_000)
        #expect(overlaps == 0)
    }
}
