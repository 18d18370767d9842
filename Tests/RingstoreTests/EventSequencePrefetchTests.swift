import Foundation
import Synchronization
import Testing
@testable import Ringstore

/// ``EventSequence`` fetches the page after the current one on a task of its
/// own while the current one is handed out: pages must still come in order,
/// with no event twice or missing, `maxCount` must hold across pages, and at
/// most one page may be fetched ahead.
@Suite struct EventSequencePrefetchTests {
    /// Where each fetch started and how many it asked for.
    final class Fetches: Sendable {
        let log = Mutex<[(from: UInt64, limit: Int)]>([])
        var all: [(from: UInt64, limit: Int)] { log.withLock { $0 } }
    }

    /// A sequence over 0..<total (as versions), recording each fetch.
    static func numbers(total: Int, maxCount: Int, fetches: Fetches) -> EventSequence {
        EventSequence(start: .at(0), maxCount: maxCount) { cursor, limit in
            guard case .at(let from) = cursor else { return ([], nil) }
            fetches.log.withLock { $0.append((from, limit)) }
            let end = min(UInt64(total), from + UInt64(limit))
            let events = (from..<end).map { v in
                RecordedEvent(stream: "s", version: v, position: v, id: UUID(), type: "T", data: [], metadata: [],
                              contentType: .binary, timestampNanoseconds: 0)
            }
            return (events, end < UInt64(total) ? .at(end) : nil)
        }
    }

    @Test(arguments: [(0, Int.max), (1, Int.max), (511, Int.max), (512, Int.max), (513, Int.max), (2_000, Int.max),
                      (2_000, 1_000), (2_000, 1_024), (2_000, 1)])
    func pagesFetchedAheadComeInOrderWithoutGapsOrRepeats(total: Int, maxCount: Int) async throws {
        let fetches = Fetches()
        let read = try await Self.numbers(total: total, maxCount: maxCount, fetches: fetches).collect()
        #expect(read.map { $0.version } == Array(0..<UInt64(min(total, maxCount))))
        // Each page was fetched once, from where the one before ended, and never past maxCount.
        let seen = fetches.all
        #expect(seen.map(\.from) == (0..<seen.count).map { UInt64($0 * EventSequence.pageSize) })
        #expect(seen.reduce(0) { $0 + $1.limit } <= max(maxCount, 0) || seen.isEmpty)
    }

    @Test func anIteratorStoppedEarlyFetchesAtMostOnePageAhead() async throws {
        let fetches = Fetches()
        let sequence = Self.numbers(total: 10_000, maxCount: Int.max, fetches: fetches)
        var count = 0
        for try await _ in sequence {
            count += 1
            if count == 10 { break }
        }
        // Let a fetch still under way finish before counting.
        for _ in 0..<100 where fetches.all.count < 2 { await Task.yield() }
        #expect(fetches.all.count <= 2)
    }

    /// Through a store: `$all` and a long stream read page by page with the
    /// next page fetched ahead give the events appended, each once, in order.
    @Test func storeReadsAcrossPagesMatchWhatWasAppended() async throws {
        let dir = TemporaryDirectory()
        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        var positions: [UInt64] = []
        for batch in 0..<6 {
            for stream in ["a", "b"] {
                let result = try await store.append(to: stream, events: (0..<200).map { event("\(stream)\(batch)-\($0)") })
                positions += (0..<200).map { _ in 0 }
                _ = result
            }
        }
        await store.splitter.checkpointForTesting()
        let all = try await store.readAll().collect()
        #expect(all.count == positions.count)
        #expect(zip(all, all.dropFirst()).allSatisfy { $0.position < $1.position })
        let a = try await store.read(stream: "a").collect()
        #expect(a.map(\.version) == (0..<1_200).map { UInt64($0) })
        let some = try await store.readAll(maxCount: 700).collect()
        #expect(some == Array(all.prefix(700)))
        try await store.close()
    }
}
