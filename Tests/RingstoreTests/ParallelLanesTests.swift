import Glibc
import Synchronization
import Testing
@testable import Ringstore

/// ``ParallelLanes``: every item runs exactly once, on lanes numbered from 0
/// (the caller's), and the first error stops the lanes and is thrown.
@Suite struct ParallelLanesTests {
    @Test func everyItemRunsOnceOnItsLane() throws {
        let count = 2_000
        let seen = Mutex([Int](repeating: 0, count: count))
        let lanesSeen = Mutex(Set<Int>())
        let callerThread = pthread_self()
        let onCaller = Mutex(0)
        var reports = 0
        let ran = try ParallelLanes.run(count: count, lanes: 4, owner: "lanes-test", progress: { _ in reports += 1 }) { lane, item in
            seen.withLock { $0[item] += 1 }
            lanesSeen.withLock { _ = $0.insert(lane) }
            if lane == 0 { onCaller.withLock { $0 += pthread_equal(pthread_self(), callerThread) != 0 ? 1 : -1_000_000 } }
        }
        #expect(ran >= 1 && ran <= 4)
        #expect(seen.withLock { $0 }.allSatisfy { $0 == 1 })
        #expect(lanesSeen.withLock { $0 }.allSatisfy { $0 >= 0 && $0 < ran })
        // Lane 0 is the calling thread, and only it reports progress, once per item it ran.
        #expect(onCaller.withLock { $0 } == reports)
        #expect(BackgroundThread.running(ownedBy: "lanes-test") == 0)
    }

    @Test func theFirstErrorStopsTheLanesAndIsThrown() throws {
        struct Failure: Error, Equatable { let item: Int }
        // One lane: nothing after the failing item runs.
        let ran = Atomic<Int>(0)
        #expect(throws: Failure(item: 100)) {
            try ParallelLanes.run(count: 10_000, lanes: 1, owner: "lanes-fail") { _, item in
                ran.wrappingAdd(1, ordering: .relaxed)
                if item == 100 { throw Failure(item: 100) }
            }
        }
        #expect(ran.load(ordering: .relaxed) == 101)
        // Several: the error is thrown once every lane has returned.
        #expect(throws: Failure(item: 100)) {
            try ParallelLanes.run(count: 10_000, lanes: 3, owner: "lanes-fail") { _, item in
                if item == 100 { throw Failure(item: 100) }
            }
        }
        #expect(BackgroundThread.running(ownedBy: "lanes-fail") == 0)
    }

    @Test func noItemsRunsNothing() throws {
        let ran = try ParallelLanes.run(count: 0, lanes: 8, owner: "lanes-empty") { _, _ in Issue.record("an item ran") }
        #expect(ran == 1)
    }
}
