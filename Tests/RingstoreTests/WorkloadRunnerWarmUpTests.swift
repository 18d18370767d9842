import Synchronization
import Testing
@testable import Ringstore
@testable import RingstoreBench

/// The bench's hook after the warm-up (where `ringstore bench` syncs the
/// store's file system, so that the warm-up's writeback stays out of the
/// measured run): called once, after the warm-up's events, and only with a warm-up.
@Suite struct WorkloadRunnerWarmUpTests {
    final class Calls: Sendable {
        let count = Atomic<Int>(0)
        let eventsAtCall = Atomic<Int>(-1)
    }

    @Test func theHookRunsOnceAfterTheWarmUpAndNeverWithoutOne() async throws {
        for warmUp in [true, false] {
            let dir = TemporaryDirectory("WorkloadRunnerWarmUpTests")
            let system = try await RingstoreSystem.open(at: dir.path, configuration: .testing(capacity: 4 << 20))
            let calls = Calls()
            let workload = Workload(streams: 12, events: 48, writers: 3, warmUp: warmUp)
            let runner = WorkloadRunner(workload: workload, afterWarmUp: {
                calls.count.add(1, ordering: .relaxed)
                calls.eventsAtCall.store(Int(system.store.stats().eventsAcknowledged), ordering: .relaxed)
            })
            let result = try await runner.run(system)
            try await system.close()
            #expect(result.events == 48)
            #expect(calls.count.load(ordering: .relaxed) == (warmUp ? 1 : 0))
            if warmUp { #expect(calls.eventsAtCall.load(ordering: .relaxed) == 12, "after the warm-up's one event per stream, before the run") }
        }
    }
}
