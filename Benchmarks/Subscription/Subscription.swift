// Subscription delivery.
//
// Subscription_live_10kEvents: one iteration subscribes to $all from the end,
// appends 10,000 events (100 appends of 100, durable, 8 writers) and ends when
// the subscriber has received all of them: the time from the first append to
// the last delivery.
// Subscription_catchUp_100kEvents: one iteration subscribes to $all from the
// start of a store holding 100,000 events and ends at the last of them.

import Benchmark
import BenchmarkSupport
import Foundation
import Ringstore

let benchmarks: @Sendable () -> Void = {
    let names = streamNames(1_000)

    Benchmark(
        "Subscription_live_10kEvents",
        configuration: .init(metrics: [.wallClock, eventsPerSecond], maxDuration: .seconds(5), maxIterations: 50),
        closure: { benchmark in
            guard let fixture = temporaryStores.withLock({ $0["live"] }) else { return benchmark.error("setup did not run") }
            let events = 10_000
            let subscription = try fixture.store.subscribeToAll(from: .end)
            let clock = ContinuousClock()
            benchmark.startMeasurement()
            let start = clock.now
            let subscriber = Task {
                var received = 0
                for try await _ in subscription {
                    received += 1
                    if received == events { break }
                }
                return received
            }
            try await fixture.fill(appends: events / 100, eventsPerAppend: 100, streams: names, writers: 8,
                                   seed: UInt64(benchmark.currentIteration + 1))
            let received = try await subscriber.value
            let elapsed = start.duration(to: clock.now)
            benchmark.stopMeasurement()
            guard received == events else { return benchmark.error("received \(received) of \(events) events") }
            benchmark.measurement(eventsPerSecond, Int(Double(events) / elapsed.seconds))
        },
        setup: {
            let fixture = try await TemporaryStore.open(durability: .durable, journalCapacity: 256 << 20)
            temporaryStores.withLock { $0["live"] = fixture }
        },
        teardown: {
            try await temporaryStores.withLock({ $0.removeValue(forKey: "live") })?.close()
        })

    Benchmark(
        "Subscription_catchUp_100kEvents",
        configuration: .init(metrics: [.wallClock, eventsPerSecond], maxDuration: .seconds(5), maxIterations: 50),
        closure: { benchmark in
            guard let fixture = temporaryStores.withLock({ $0["catchUp"] }) else { return benchmark.error("setup did not run") }
            let events = 100_000
            let clock = ContinuousClock()
            benchmark.startMeasurement()
            let start = clock.now
            var received = 0
            for try await _ in try fixture.store.subscribeToAll(from: .start) {
                received += 1
                if received == events { break }
            }
            let elapsed = start.duration(to: clock.now)
            benchmark.stopMeasurement()
            benchmark.measurement(eventsPerSecond, Int(Double(events) / elapsed.seconds))
        },
        setup: {
            let fixture = try await TemporaryStore.open()
            try await fixture.fill(appends: 1_000, eventsPerAppend: 100, streams: names)
            try await fixture.waitForSplit()
            temporaryStores.withLock { $0["catchUp"] = fixture }
        },
        teardown: {
            try await temporaryStores.withLock({ $0.removeValue(forKey: "catchUp") })?.close()
        })
}
