import Foundation
import Logging
@_spi(Benchmarks) import Ringstore

/// Ringstore, embedded, as a ``BenchSystem``.
public final class RingstoreSystem: BenchSystem {
    public let name = "ringstore"
    public let store: EventStore
    /// Told of each acknowledged append while live subscribers run.
    let probe = SubscriptionProbe()

    private init(store: EventStore) {
        self.store = store
    }

    /// Opens (or creates) the store at `directory`.
    public static func open(at directory: String, configuration: Configuration,
                            logger: Logger = Logger(label: "ringstore")) async throws -> RingstoreSystem {
        RingstoreSystem(store: try await EventStore.open(at: directory, configuration: configuration, logger: logger))
    }

    public func append(stream: String, expectedVersion: UInt64?, events: [EventData]) async throws {
        let result = try await store.append(to: stream, expectedVersion: expectedVersion.map { .exact($0) } ?? .noStream, events: events)
        probe.acknowledged(lastPosition: result.lastPosition)
    }

    public func latestVersion(of stream: String) async throws -> UInt64? {
        // A real read through the stream file: waits for the splitter if the
        // stream's newest acknowledged events are still only in the journal.
        do {
            var newest = store.read(stream: stream, from: .end, direction: .backwards, maxCount: 1).makeAsyncIterator()
            return try await newest.next()?.version
        } catch let error as RingstoreError where error.code == .streamNotFound {
            return nil
        }
    }

    /// Flushes: journal flushes (group commits), and how long their syncs took
    /// since the last call, with the slow syncs and checkpoint steps as spans
    /// (see ``JournalSyncTimes``). Bytes written: the journal's
    /// durable cursor (every record, header and padding the ring received) plus
    /// the sizes of every other file in the store (stream files, their indexes,
    /// the global index, the catalog), which only grow.
    public func counters() async throws -> SystemCounters {
        let stats = store.stats()
        let files = FileSizes.total(under: store.directory, excluding: ["journal.ring"])
        return SystemCounters(flushes: stats.flushes, bytesWritten: stats.durablePosition + files,
                              journalFullWaits: stats.appendsWaitedForSpace,
                              longestCheckpointMs: stats.checkpointMaxMilliseconds,
                              journalSyncs: JournalSyncTimes.isCollecting ? JournalSyncTimes.shared.take() : nil,
                              spans: JournalSyncTimes.isCollecting ? JournalSyncTimes.shared.takeSpans() : nil)
    }

    public func progressDetail() -> String {
        let stats = store.stats()
        let ring = 100 * stats.journalBytesInUse / max(1, stats.journalCapacity)
        let held = stats.splitSegmentHolds > 0 ? " (\(stats.splitSegmentHolds) holds)" : ""
        return "ring \(ring)% in use, split lag \(String(format: "%.1f", Double(stats.splitLag) / 1_048_576)) MiB, segments \(stats.splitSegmentBytes >> 20) MiB\(held)\(stats.bucketFileBytes > 0 ? ", buckets \(stats.bucketFileBytes >> 20) MiB" : ""), longest checkpoint \(Int(stats.checkpointMaxMilliseconds)) ms"
    }

    /// Syncs the store's file system and starts the store's longest checkpoint again.
    public func startMeasuring() throws {
        try FileSystemSync.sync(store.directory)
        store.resetLongestCheckpointForBenchmarks()
    }

    /// Flushes, then waits (up to 2 minutes) until the splitter has copied every written record.
    public func settle() async throws {
        try await store.flush()
        let deadline = ContinuousClock.now + .seconds(120)
        while true {
            let stats = store.stats()
            if stats.splitPosition >= stats.writtenPosition { return }
            guard ContinuousClock.now < deadline else {
                throw BenchError("the splitter did not catch up within 2 minutes (split lag \(stats.writtenPosition - stats.splitPosition) bytes)")
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    public func readStream(_ stream: String) async throws -> Int {
        var count = 0
        for try await event in store.read(stream: stream) {
            guard event.version == UInt64(count) else {
                throw BenchError("ringstore: \(stream) returned version \(event.version) where \(count) was expected")
            }
            count += 1
        }
        return count
    }

    public func readAll() async throws -> Int {
        var count = 0
        var last: UInt64?
        for try await event in store.readAll() {
            if let last, event.position <= last {
                throw BenchError("ringstore: $all went backwards at position \(event.position)")
            }
            last = event.position
            count += 1
        }
        return count
    }

    public func close() async throws {
        try await store.close()
    }
}

extension RingstoreSystem {
    /// Starts `count` live `$all` subscribers measured by the probe.
    func startSubscribers(_ count: Int) throws -> (SubscriptionProbe, [Task<Void, Never>]) {
        (probe, try probe.start(count, on: store))
    }
}
