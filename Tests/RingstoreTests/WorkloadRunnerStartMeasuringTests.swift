import Synchronization
import Testing
@testable import Ringstore
@testable import RingstoreBench

/// ``BenchSystem/startMeasuring()`` (where a system syncs its file system, so
/// that the warm-up's writeback stays out of the measured run, and Ringstore
/// starts its longest checkpoint again): called once, after the warm-up's
/// events and before the measured run's.
@Suite struct WorkloadRunnerStartMeasuringTests {
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
        func startMeasuring() throws {
            log.withLock { $0.append("start measuring after \(inner.store.stats().eventsAcknowledged) events") }
            try inner.startMeasuring()
        }
    }

    @Test func measuringStartsOnceAfterTheWarmUpAndBeforeTheMeasuredRun() async throws {
        for warmUp in [true, false] {
            let dir = TemporaryDirectory("WorkloadRunnerStartMeasuringTests")
            let system = Recording(try await RingstoreSystem.open(at: dir.path, configuration: .testing(capacity: 4 << 20)))
            let workload = Workload(streams: 12, events: 48, writers: 3, warmUp: warmUp)
            let result = try await WorkloadRunner(workload: workload).run(system)
            try await system.close()
            #expect(result.events == 48)
            #expect(system.log.withLock { $0 } == ["start measuring after \(warmUp ? 12 : 0) events"])
        }
    }
}
