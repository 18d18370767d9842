import Foundation
import Glibc
import Synchronization
import Testing
@testable import Ringstore

/// ``ParallelLanes``: every item runs exactly once, on lanes numbered from 0
/// (the caller's), and the first error stops the lanes and is thrown.
@Suite struct ParallelLanesTests {
    @Test func everyItemRunsOnceOnItsLane() throws {
        let count = 2_000
        // (lane, item, whether it ran on the calling thread), in a lock ThreadSanitizer sees.
        let ran = Recorder<(lane: Int, item: Int, onCaller: Bool)>()
        let callerThread = pthread_self()
        var reports = 0
        let lanes = try ParallelLanes.run(count: count, lanes: 4, owner: "lanes-test", progress: { _ in reports += 1 }) { lane, item in
            ran.append((lane, item, pthread_equal(pthread_self(), callerThread) != 0))
        }
        let runs = ran.values
        #expect(lanes >= 1 && lanes <= 4)
        #expect(runs.map(\.item).sorted() == Array(0..<count))
        #expect(runs.allSatisfy { $0.lane >= 0 && $0.lane < lanes })
        // Lane 0 is the calling thread, the only one, and it reports progress once per item it ran.
        #expect(runs.allSatisfy { ($0.lane == 0) == $0.onCaller })
        #expect(runs.filter { $0.lane == 0 }.count == reports)
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
