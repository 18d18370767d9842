import Synchronization
import Testing
@testable import Ringstore
@testable import RingstoreBench

/// The bench's hook after the warm-up (where `ringstore bench` syncs the
/// store's file system, so that the warm-up's writeback stays out of the
/// measured run): called once, after the warm-up's events, and only with a warm-up.
@Suite struct WorkloadRunnerWarmUpTests {
    /// Ringstore as a bench system, noting when the runner asks it to start measuring.
    final class Recording: BenchSystem {
        let inner: RingstoreSystem
        let log = Mutex<[String]>([])
        init(_ inner: RingstoreSystem) { self.inner = inner }
        var name: String { inner.name }
        func append(stream: String, expectedVersion: UInt64?, events: [EventData]) async throws {
            try await inner.append(stream: stream, expectedVersion: expectedVersion, events: events)
        }
        func latestVersion(of stream: String) async throws -> UInt64? { try await inner.latestVersion(of: stream) }
        func counters() async throws -> SystemCounters { try await inner.counters() }
        func progressDetail() -> String { inner.progressDetail() }
        func settle() async throws { try await inner.settle() }
        func readStream(_ stream: String) async throws -> Int { try await inner.readStream(stream) }
        func readAll() async throws -> Int { try await inner.readAll() }
        func close() async throws { try await inner.close() }
        func startMeasuring() {
            log.withLock { $0.append("start measuring after \(inner.store.stats().eventsAcknowledged) events") }
            inner.startMeasuring()
        }
    }

    @Test func theHookRunsOnceAfterTheWarmUpAndBeforeTheMeasuredRunAndNeverWithoutOne() async throws {
        for warmUp in [true, false] {
            let dir = TemporaryDirectory("WorkloadRunnerWarmUpTests")
            let system = Recording(try await RingstoreSystem.open(at: dir.path, configuration: .testing(capacity: 4 << 20)))
            let workload = Workload(streams: 12, events: 48, writers: 3, warmUp: warmUp)
            let runner = WorkloadRunner(workload: workload, afterWarmUp: {
                system.log.withLock { $0.append("after warm-up, \(system.inner.store.stats().eventsAcknowledged) events") }
            })
            let result = try await runner.run(system)
            try await system.close()
            #expect(result.events == 48)
            let expected = warmUp ? ["after warm-up, 12 events", "start measuring after 12 events"] : ["start measuring after 0 events"]
            #expect(system.log.withLock { $0 } == expected)
        }
    }
}
