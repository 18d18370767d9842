// Benchmarks of Ringstore's append path: 64 concurrent writers appending 200-byte
// JSON events to 10,000 streams with `.any` expected version, durable and relaxed,
// one event and 100 events per append.
//
// One benchmark iteration is one *round*: a TaskGroup of 64 writer tasks that
// together perform `appendsPerRound` appends (each writer claims the next append
// from a shared counter until the round's appends are used up), then the round
// ends when the last append has been acknowledged. The events of a round are
// built before the measurement starts, so the measured time is the store's.
//
// Metrics (see README.md):
// - Throughput / Time (wall clock): per round. In the `_1event` benchmarks a round
//   is exactly 1,000 appends of 1 event with `scalingFactor: .kilo`, so one scaled
//   iteration is one event and Throughput is events/s. The `_100events` rounds are
//   64,000 events, so there Throughput is rounds/s; use `eventsPerSecond`.
// - eventsPerSecond: events acknowledged in a round divided by the round's wall
//   clock time (one sample per round), the comparable number across all four.
// - appendLatencyMicros: the latency of every single append (call to return), µs.
// - flushesPerSecond, eventsPerFlush: from `store.stats().flushes` over each round.
//
// These time the journal's group commit, not the splitter (which runs beside
// them and may fall behind with 10,000 streams), so each benchmark sizes its
// journal (`journalCapacity`) and bounds its rounds (`maxIterations`) so that
// the ring never fills; a round also refuses to start (and fails the
// benchmark) if the ring would not have room for it.

import Benchmark
import BenchmarkSupport
import Foundation
import Ringstore
import Synchronization

// MARK: - Workload parameters

/// Concurrent writer tasks per round.
let writerCount = 64
/// Streams the writers spread their appends over.
let streamCount = 10_000
/// Bytes of ring one event takes: 64-byte header + stream name + type + data,
/// rounded up to 8 (an upper bound for the names used here).
let journalBytesPerEvent = 64 + 12 + 7 + eventSize + 8

let streamNames: [String] = BenchmarkSupport.streamNames(streamCount)

// MARK: - Benchmark state

/// One benchmark's store, created in setup and removed in teardown.
final class StoreFixture: Sendable {
    let directory: URL
    let store: EventStore

    init(directory: URL, store: EventStore) {
        self.directory = directory
        self.store = store
    }

    static func open(durability: Configuration.Durability, journalCapacity: UInt64) async throws -> StoreFixture {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("ringstore-bench-\(getpid())-\(UUID().uuidString)", isDirectory: true)
        var configuration = Configuration()
        configuration.journalCapacity = journalCapacity
        configuration.durability = durability
        let store = try await EventStore.open(at: directory.path, configuration: configuration)
        return StoreFixture(directory: directory, store: store)
    }

    func close() async throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        try await store.close()
    }
}

/// The fixtures of the benchmarks set up in this process, by benchmark name.
let fixtures = Mutex<[String: StoreFixture]>([:])

/// The appends of one round, built before measuring, and the counter writers
/// claim them with.
final class Round: Sendable {
    let batches: [[EventData]]
    let streams: [String]
    let nextAppend = Atomic<Int>(0)

    init(appends: Int, eventsPerAppend: Int, seed: UInt64) {
        var random = SeededRandom(seed: seed)
        streams = (0..<appends).map { _ in streamNames[Int(random.next() % UInt64(streamCount))] }
        batches = (0..<appends).map { _ in
            (0..<eventsPerAppend).map { _ in EventData(type: "Reading", data: eventPayload) }
        }
    }

    /// Runs the round with `writerCount` concurrent writers; returns every append's latency in ns.
    func run(on store: EventStore) async throws -> [Int] {
        try await withThrowingTaskGroup(of: [Int].self) { group in
            for _ in 0..<writerCount {
                group.addTask {
                    var latencies = [Int]()
                    latencies.reserveCapacity(self.batches.count / writerCount + 1)
                    let clock = ContinuousClock()
                    while true {
                        let index = self.nextAppend.add(1, ordering: .relaxed).oldValue
                        guard index < self.batches.count else { break }
                        let start = clock.now
                        try await store.append(to: self.streams[index], expectedVersion: .any, events: self.batches[index])
                        let elapsed = start.duration(to: clock.now)
                        latencies.append(Int(elapsed.components.seconds) * 1_000_000_000
                            + Int(elapsed.components.attoseconds / 1_000_000_000))
                    }
                    return latencies
                }
            }
            var all = [Int]()
            all.reserveCapacity(batches.count)
            for try await latencies in group {
                all.append(contentsOf: latencies)
            }
            return all
        }
    }
}

// MARK: - Benchmarks

let eventsPerSecond = BenchmarkMetric.custom("eventsPerSecond", polarity: .prefersLarger, useScalingFactor: false)
let appendLatencyMicros = BenchmarkMetric.custom("appendLatencyMicros", polarity: .prefersSmaller, useScalingFactor: false)
let flushesPerSecond = BenchmarkMetric.custom("flushesPerSecond", polarity: .prefersSmaller, useScalingFactor: false)
let eventsPerFlush = BenchmarkMetric.custom("eventsPerFlush", polarity: .prefersLarger, useScalingFactor: false)

struct AppendWorkload {
    var name: String
    var durability: Configuration.Durability
    var eventsPerAppend: Int

    /// Appends per round: 1,000 for single-event appends (1,000 events, `.kilo`
    /// scaling), 10 per writer for 100-event appends (64,000 events).
    var appendsPerRound: Int { eventsPerAppend == 1 ? 1_000 : 10 * writerCount }
    var eventsPerRound: Int { appendsPerRound * eventsPerAppend }
    var warmupRounds: Int { 1 }
    /// Size of this benchmark's ring journal: a multiple of 4096. Creating the
    /// store writes the whole file once (about 3 s per GiB on the dev box), so
    /// it is no larger than the rounds need.
    var journalCapacity: UInt64 { eventsPerAppend == 1 ? 1 << 30 : 2 << 30 }
    /// Rounds that fit in 80 % of the ring (warm-up included), at most 2,000.
    var maxRounds: Int {
        let budget = Int(journalCapacity) / 10 * 8 / (journalBytesPerEvent * eventsPerRound)
        return min(2_000, budget - warmupRounds)
    }

    func register() {
        var metrics: [BenchmarkMetric] = [.wallClock, eventsPerSecond, appendLatencyMicros, flushesPerSecond, eventsPerFlush]
        if eventsPerAppend == 1 { metrics.insert(.throughput, at: 0) }
        let name = name
        let journalCapacity = journalCapacity
        Benchmark(
            name,
            configuration: .init(
                metrics: metrics,
                tags: [:],
                warmupIterations: warmupRounds,
                scalingFactor: eventsPerAppend == 1 ? .kilo : .one,
                maxDuration: .seconds(3),
                maxIterations: maxRounds
            ),
            closure: { benchmark in
                guard let fixture = fixtures.withLock({ $0[name] }) else {
                    benchmark.error("no store for \(name): setup did not run")
                    return
                }
                let store = fixture.store
                let before = store.stats()
                guard before.journalBytesInUse + UInt64(2 * eventsPerRound * journalBytesPerEvent) <= before.journalCapacity else {
                    benchmark.error("the journal (\(before.journalCapacity) bytes, \(before.journalBytesInUse) in use) has no room for another round; lower maxIterations or raise journalCapacity")
                    return
                }
                let round = Round(appends: appendsPerRound, eventsPerAppend: eventsPerAppend,
                                  seed: UInt64(benchmark.currentIteration + 1))

                let clock = ContinuousClock()
                benchmark.startMeasurement()
                let start = clock.now
                let latencies = try await round.run(on: store)
                let elapsed = start.duration(to: clock.now)
                benchmark.stopMeasurement()

                let after = store.stats()
                let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                let flushes = Int(after.flushes - before.flushes)
                // Every append returned (the group rethrows any failure), so the round's
                // events are all acknowledged. `stats().eventsAcknowledged` is not used
                // here: the store bumps it just after resuming the appends, so right
                // after the last append returns it can still lag by a few events.
                guard latencies.count == appendsPerRound else {
                    benchmark.error("round made \(latencies.count) appends, expected \(appendsPerRound)")
                    return
                }
                let events = eventsPerRound
                benchmark.measurement(eventsPerSecond, Int((Double(events) / seconds).rounded()))
                benchmark.measurement(flushesPerSecond, Int((Double(flushes) / seconds).rounded()))
                if flushes > 0 {
                    benchmark.measurement(eventsPerFlush, events / flushes)
                }
                for latency in latencies {
                    benchmark.measurement(appendLatencyMicros, max(1, (latency + 500) / 1_000))
                }
            },
            setup: {
                let fixture = try await StoreFixture.open(durability: durability, journalCapacity: journalCapacity)
                fixtures.withLock { $0[name] = fixture }
            },
            teardown: {
                guard let fixture = fixtures.withLock({ $0.removeValue(forKey: name) }) else { return }
                try await fixture.close()
            }
        )
    }
}

let benchmarks: @Sendable () -> Void = {
    let workloads = [
        AppendWorkload(name: "Append_durable_1event", durability: .durable, eventsPerAppend: 1),
        AppendWorkload(name: "Append_durable_100events", durability: .durable, eventsPerAppend: 100),
        AppendWorkload(name: "Append_relaxed_1event", durability: .relaxed, eventsPerAppend: 1),
        AppendWorkload(name: "Append_relaxed_100events", durability: .relaxed, eventsPerAppend: 100),
    ]
    for workload in workloads {
        workload.register()
    }
}
