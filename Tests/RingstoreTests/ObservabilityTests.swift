import CoreMetrics
import Foundation
import InMemoryLogging
import Logging
import MetricsTestKit
import Testing
@testable import Ringstore

/// Metrics bootstrapping is process-wide and allowed once: this suite alone does it.
@Suite struct ObservabilityTests {
    static let metrics: TestMetrics = {
        let metrics = TestMetrics()
        MetricsSystem.bootstrap(metrics)
        return metrics
    }()

    /// A store in a folder with a unique name, so its metrics are told apart by the `store` dimension.
    private func openStore(_ dir: TemporaryDirectory, configuration: Configuration = .testing(),
                           logger: Logger = Logger(label: "ringstore")) async throws -> (EventStore, [(String, String)]) {
        _ = Self.metrics
        let name = "store-\(UUID().uuidString.prefix(8))"
        let store = try await EventStore.open(at: dir.child(name), configuration: configuration, logger: logger)
        return (store, [("store", name)])
    }

    @Test func countersGaugesAndTimersFollowTheStore() async throws {
        let dir = TemporaryDirectory()
        let (store, dimensions) = try await openStore(dir)
        for i in 0..<10 { try await store.append(to: "m", events: [event("\(i)a"), event("\(i)b"), event("\(i)c")]) }
        // One read that must wait for the splitter.
        store.splitter.pause()
        try await store.append(to: "waited", events: [event("x")])
        let reader = Task { try await store.read(stream: "waited").collect().count }
        // The paused splitter takes no requests: this one stays until it resumes.
        try await waitUntil("the reader to ask for its stream") { store.splitter.readers.hasRequests.load(ordering: .acquiring) }
        store.splitter.resume()
        #expect(try await reader.value == 1)
        store.publishMetrics()

        let metrics = Self.metrics
        #expect(try metrics.expectCounter("ringstore_appends_total", dimensions).totalValue == 11)
        #expect(try metrics.expectCounter("ringstore_events_appended_total", dimensions).totalValue == 31)
        let flushes = try metrics.expectCounter("ringstore_flushes_total", dimensions).totalValue
        #expect(flushes >= 1 && flushes <= 11)
        let flushTimes = try metrics.expectTimer("ringstore_flush_duration", dimensions).values
        #expect(Int64(flushTimes.count) == flushes)
        #expect(flushTimes.allSatisfy { $0 > 0 })
        #expect(try metrics.expectCounter("ringstore_reader_waits_total", dimensions).totalValue == 1)
        // In nanoseconds: the wait the store's own stats give in milliseconds.
        let waitTimes = try metrics.expectTimer("ringstore_reader_wait_duration", dimensions).values
        let waitedMilliseconds = store.stats().readerWaitP99Milliseconds
        #expect(waitTimes.count == 1 && waitedMilliseconds > 0)
        #expect(waitTimes.first.map { abs(Double($0) / 1e6 - waitedMilliseconds) < 0.001 } == true, "\(waitTimes) ns, \(waitedMilliseconds) ms")
        let used = try #require(try metrics.expectGauge("ringstore_ring_used_ratio", dimensions).lastValue)
        #expect(used >= 0 && used < 0.1)  // 0 once a checkpoint (due every second) has passed everything
        #expect(try metrics.expectGauge("ringstore_split_lag_bytes", dimensions).lastValue != nil)
        #expect(try metrics.expectGauge("ringstore_split_segment_bytes", dimensions).lastValue != nil)
        #expect(try metrics.expectGauge("ringstore_bucket_file_bytes", dimensions).lastValue == 0, "no bucket files")

        // Publishing again without new appends adds nothing; closing publishes a last sample.
        store.publishMetrics()
        #expect(try metrics.expectCounter("ringstore_appends_total", dimensions).totalValue == 11)
        try await store.append(to: "m", events: [event("last")])
        try await store.close()
        #expect(try metrics.expectCounter("ringstore_appends_total", dimensions).totalValue == 12)
        #expect(try metrics.expectGauge("ringstore_split_lag_bytes", dimensions).lastValue == 0)
    }

    /// Every step of a checkpoint is timed under its own `step` dimension,
    /// once per checkpoint (counted once the store is closed: no checkpoint is
    /// then half done).
    @Test func eachCheckpointStepIsTimed() async throws {
        let dir = TemporaryDirectory()
        let (store, dimensions) = try await openStore(dir)
        for i in 0..<20 { try await store.append(to: "stream-\(i % 4)", events: [event("\(i)")]) }
        await store.splitter.checkpointForTesting()
        try await store.append(to: "stream-0", events: [event("last")])
        try await store.close()
        let checkpoints = Int(store.stats().checkpoints)
        #expect(checkpoints >= 2, "the forced one and the one at close")
        for step in CheckpointStep.allCases {
            let times = try Self.metrics.expectTimer("ringstore_checkpoint_step_duration", dimensions + [("step", step.rawValue)]).values
            #expect(times.count == checkpoints, "\(step.rawValue): \(times.count) times for \(checkpoints) checkpoints")
            #expect(times.allSatisfy { $0 >= 0 })
        }
    }

    @Test func logsOpenAndCloseAtInfoAndNothingPerEvent() async throws {
        let dir = TemporaryDirectory()
        let handler = InMemoryLogHandler()
        let logger = Logger(label: "ringstore") { _ in handler }
        let (store, _) = try await openStore(dir, logger: logger)
        for i in 0..<200 { try await store.append(to: "quiet", events: [event("\(i)")]) }
        _ = try await store.read(stream: "quiet").collect()
        try await store.close()
        let entries = handler.entries
        #expect(entries.map(\.message.description) == ["opened store", "closed store"])
        #expect(entries.allSatisfy { $0.level == .info })
        #expect(entries.first?.metadata["recoveredEvents"] == "0")
        let openMilliseconds = entries.first?.metadata["openMilliseconds"].flatMap { Double("\($0)") }
        #expect(openMilliseconds.map { $0 > 0 } == true, "\(String(describing: entries.first?.metadata))")
        #expect(entries.last?.metadata["appends"] == "200")
        #expect(entries.first?.metadata["store"].map { "\($0)" }?.hasPrefix(dir.path) == true)
    }

    @Test func journalFullWaitsAreCountedAndWarnedAbout() async throws {
        let dir = TemporaryDirectory()
        let handler = InMemoryLogHandler()
        let logger = Logger(label: "ringstore") { _ in handler }
        var configuration = Configuration.testing(capacity: 64 << 10)
        configuration.journalFullWait = .milliseconds(200)  // the subject; the paused splitter frees nothing meanwhile
        let (store, dimensions) = try await openStore(dir, configuration: configuration, logger: logger)
        store.splitter.pause()
        let payload = [UInt8](repeating: 1, count: 2000)
        let error = await ringstoreError {
            for _ in 0..<100 { try await store.append(to: "full", events: [EventData(type: "Big", data: payload)]) }
        }
        #expect(error?.code == .journalFull)
        store.publishMetrics()
        #expect(try Self.metrics.expectCounter("ringstore_journal_full_waits_total", dimensions).totalValue == 1)
        #expect(try #require(try Self.metrics.expectGauge("ringstore_ring_used_ratio", dimensions).lastValue) > 0.9)
        let warning = try #require(handler.entries.first { $0.level == .warning })
        #expect(warning.message.description.contains("journal full"))
        // More waits in the same episode: counted, but no second warning within the interval.
        #expect(await ringstoreError { try await store.append(to: "full", events: [EventData(type: "Big", data: payload)]) }?.code == .journalFull)
        store.publishMetrics()
        #expect(try Self.metrics.expectCounter("ringstore_journal_full_waits_total", dimensions).totalValue == 2)
        #expect(handler.entries.filter { $0.level == .warning }.count == 1, "one warning per episode, not per sample")
        store.splitter.resume()
        try await store.close()
    }
}
