// The splitter's throughput and warm read rates.
//
// Split_*: one iteration appends a burst (relaxed, 64 writers, 10,000 streams)
// and ends when the splitter has copied all of it into stream files, so the
// time covers the appends and the split; the splitter is the slower of the two.
// ReadStream_* and ReadAll_*: one iteration reads a prepared store (fully
// split, so every read comes from stream files and the global index) from its
// start to its end.

import Benchmark
import BenchmarkSupport
import Foundation
import Ringstore

let benchmarks: @Sendable () -> Void = {
    registerSplit(name: "Split_relaxed_1event_10kStreams", appends: 10_000, eventsPerAppend: 1)
    registerSplit(name: "Split_relaxed_100events_10kStreams", appends: 640, eventsPerAppend: 100)
    registerRead(name: "ReadStream_10kEvents", streams: 1, appends: 100, eventsPerAppend: 100) { store in
        try await count(store.read(stream: "stream-0"))
    }
    registerRead(name: "ReadAll_100kEvents_runsOf100", streams: 1_000, appends: 1_000, eventsPerAppend: 100) { store in
        try await count(store.readAll())
    }
    registerRead(name: "ReadAll_20kEvents_interleaved", streams: 1_000, appends: 20_000, eventsPerAppend: 1) { store in
        try await count(store.readAll())
    }
}

/// Append a burst of `appends` × `eventsPerAppend` events, then wait for the split.
func registerSplit(name: String, appends: Int, eventsPerAppend: Int) {
    let names = streamNames(10_000)
    Benchmark(
        name,
        configuration: .init(metrics: [.wallClock, eventsPerSecond], maxDuration: .seconds(5), maxIterations: 30),
        closure: { benchmark in
            guard let fixture = temporaryStores.withLock({ $0[name] }) else { return benchmark.error("setup did not run") }
            let clock = ContinuousClock()
            benchmark.startMeasurement()
            let start = clock.now
            try await fixture.fill(appends: appends, eventsPerAppend: eventsPerAppend, streams: names,
                                   seed: UInt64(benchmark.currentIteration + 1))
            try await fixture.waitForSplit()
            let elapsed = start.duration(to: clock.now)
            benchmark.stopMeasurement()
            benchmark.measurement(eventsPerSecond, Int(Double(appends * eventsPerAppend) / elapsed.seconds))
        },
        setup: {
            let fixture = try await TemporaryStore.open(journalCapacity: 256 << 20)
            temporaryStores.withLock { $0[name] = fixture }
        },
        teardown: {
            try await temporaryStores.withLock({ $0.removeValue(forKey: name) })?.close()
        })
}

/// Fill a store once in setup (and let the split finish), then time `read` over it.
func registerRead(name: String, streams: Int, appends: Int, eventsPerAppend: Int,
                  read: @escaping @Sendable (EventStore) async throws -> Int) {
    let expected = appends * eventsPerAppend
    Benchmark(
        name,
        configuration: .init(metrics: [.wallClock, .throughput, eventsPerSecond], maxDuration: .seconds(3), maxIterations: 200),
        closure: { benchmark in
            guard let fixture = temporaryStores.withLock({ $0[name] }) else { return benchmark.error("setup did not run") }
            let clock = ContinuousClock()
            benchmark.startMeasurement()
            let start = clock.now
            let events = try await read(fixture.store)
            let elapsed = start.duration(to: clock.now)
            benchmark.stopMeasurement()
            guard events == expected else { return benchmark.error("read \(events) events, expected \(expected)") }
            benchmark.measurement(eventsPerSecond, Int(Double(events) / elapsed.seconds))
        },
        setup: {
            let fixture = try await TemporaryStore.open()
            try await fixture.fill(appends: appends, eventsPerAppend: eventsPerAppend, streams: streamNames(streams))
            try await fixture.waitForSplit()
            temporaryStores.withLock { $0[name] = fixture }
        },
        teardown: {
            try await temporaryStores.withLock({ $0.removeValue(forKey: name) })?.close()
        })
}

/// Iterates `events` to the end, touching each event's data; returns how many there were.
func count(_ events: EventSequence) async throws -> Int {
    var count = 0
    var bytes = 0
    for try await event in events {
        count += 1
        bytes &+= event.data.count
    }
    blackHole(bytes)
    return count
}
