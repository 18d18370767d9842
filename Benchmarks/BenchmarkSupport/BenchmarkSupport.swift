// What the SplitAndRead, Subscription and Codec benchmarks share: a store in a
// temporary folder, 200-byte JSON events, stream names, a cheap generator, and
// the concurrent append loop that fills a store.

import Benchmark
import Foundation
import Ringstore
import Synchronization

/// A store in a fresh temporary folder, removed by ``close()``.
public final class TemporaryStore: Sendable {
    public let directory: URL
    public let store: EventStore

    private init(directory: URL, store: EventStore) {
        self.directory = directory
        self.store = store
    }

    /// Opens a new store; waits for ring space up to 30 s so a benchmark's burst never fails on it.
    public static func open(durability: Configuration.Durability = .relaxed, journalCapacity: UInt64 = 64 << 20) async throws -> TemporaryStore {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("ringstore-bench-\(getpid())-\(UUID().uuidString)", isDirectory: true)
        var configuration = Configuration()
        configuration.journalCapacity = journalCapacity
        configuration.durability = durability
        configuration.journalFullWait = .seconds(30)
        configuration.readerWait = .seconds(30)
        return TemporaryStore(directory: directory, store: try await EventStore.open(at: directory.path, configuration: configuration))
    }

    public func close() async throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        try await store.close()
    }

    /// Waits until the splitter has copied everything written (the stream files hold every event).
    public func waitForSplit() async throws {
        try await store.flush()
        while true {
            let stats = store.stats()
            if stats.splitPosition >= stats.writtenPosition { return }
            try await Task.sleep(for: .microseconds(200))
        }
    }

    /// Appends `appends` appends of `eventsPerAppend` events with `writers`
    /// concurrent tasks, each to a stream drawn from `streams` (`.any` expected version).
    public func fill(appends: Int, eventsPerAppend: Int, streams: [String], writers: Int = 64, seed: UInt64 = 1) async throws {
        let counter = AppendCounter()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<writers {
                group.addTask {
                    var random = SeededRandom(seed: seed &* 1_000 &+ UInt64(writer))
                    while counter.next.add(1, ordering: .relaxed).oldValue < appends {
                        let stream = streams[Int(random.next() % UInt64(streams.count))]
                        let events = (0..<eventsPerAppend).map { _ in EventData(type: "Reading", data: eventPayload) }
                        _ = try await self.store.append(to: stream, expectedVersion: .any, events: events)
                    }
                }
            }
            try await group.waitForAll()
        }
    }
}

/// The counter concurrent writers claim appends with.
final class AppendCounter: Sendable {
    let next = Atomic<Int>(0)
}

/// Benchmarks' stores by benchmark name: set up in `setup`, used in the closure, closed in `teardown`.
public let temporaryStores = Mutex<[String: TemporaryStore]>([:])

/// Stream names `stream-0` … `stream-(count-1)`.
public func streamNames(_ count: Int) -> [String] { (0..<count).map { "stream-\($0)" } }

/// Size of each event's JSON payload in bytes.
public let eventSize = 200

/// A 200-byte JSON document: `{"sensor":"…","seq":…,"celsius":…,"pad":"xxx…"}`.
public let eventPayload: [UInt8] = {
    let head = #"{"sensor":"sensor-0042","seq":123456789,"celsius":21.375,"pad":""#
    let tail = #""}"#
    let bytes = Array((head + String(repeating: "x", count: eventSize - head.utf8.count - tail.utf8.count) + tail).utf8)
    precondition(bytes.count == eventSize)
    return bytes
}()

/// The 200-byte JSON payload of event `sequence`: `{"sensor":"…","seq":…,"celsius":…,"note":"…"}`
/// whose numbers and note vary from event to event (the note's words drawn
/// from `sequence`), so that a block of them compresses as varied JSON does
/// rather than as one document repeated. For the benchmarks whose numbers
/// depend on the bytes (compression); `eventPayload` serves those that only
/// copy them.
public func eventPayload(sequence: Int) -> [UInt8] {
    var random = SeededRandom(seed: UInt64(truncatingIfNeeded: sequence))
    let draw = random.next()
    var bytes = Array(#"{"sensor":"sensor-\#(1000 + draw % 9000)","seq":\#(100_000_000 + sequence % 900_000_000),"celsius":\#(10 + (draw >> 16) % 30).\#(100 + (draw >> 32) % 900),"note":""#.utf8)
    let words = ["steady", "rising", "falling", "calm", "windy", "door", "open", "shut", "pump", "on", "off", "check", "ok", "alarm", "low", "high"]
    var bits: UInt64 = 0
    var left = 0
    while bytes.count < eventSize - 2 {
        if left == 0 { bits = random.next(); left = 16 }
        bytes += Array(words[Int(bits & 15)].utf8.prefix(eventSize - 2 - bytes.count))
        if bytes.count < eventSize - 2 { bytes.append(UInt8(ascii: " ")) }
        bits >>= 4
        left -= 1
    }
    bytes += Array(#""}"#.utf8)
    precondition(bytes.count == eventSize)
    return bytes
}

/// Events handled per second of wall clock, one sample per iteration.
public let eventsPerSecond = BenchmarkMetric.custom("eventsPerSecond", polarity: .prefersLarger, useScalingFactor: false)

extension Duration {
    public var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }
}
