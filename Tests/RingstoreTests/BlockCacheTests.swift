import Foundation
import Testing
@testable import Ringstore

@Suite struct BlockCacheTests {
    func block(_ stream: String, _ versions: Range<UInt64>, size: Int = 100) -> [RecordedEvent] {
        versions.map { v in
            RecordedEvent(stream: stream, version: v, position: v * 1000, id: UUID(), type: "T", data: Array(repeating: 1, count: size),
                          metadata: [], contentType: .binary, timestampNanoseconds: 0)
        }
    }

    @Test func findsTheBlockHoldingAVersionAndEvictsOldestFirstWithinTheBudget() {
        let one = block("a", 0..<10)
        let cost = BlockCache.cost(of: one)
        let cache = BlockCache(budgetBytes: cost * 4)
        cache.insert(stream: "a", firstVersion: 0, events: one)
        cache.insert(stream: "a", firstVersion: 10, events: block("a", 10..<20))
        cache.insert(stream: "b", firstVersion: 0, events: block("b", 0..<10))
        #expect(cache.block(of: "a", containing: 15)?.firstVersion == 10)
        #expect(cache.block(of: "a", containing: 3)?.events.map(\.version) == Array(0..<10))
        #expect(cache.block(of: "a", containing: 20) == nil)
        #expect(cache.block(of: "c", containing: 0) == nil)
        // Two more blocks: the budget holds four, so the first one inserted goes.
        cache.insert(stream: "c", firstVersion: 0, events: block("c", 0..<10))
        cache.insert(stream: "c", firstVersion: 10, events: block("c", 10..<20))
        #expect(cache.block(of: "a", containing: 3) == nil)
        #expect(cache.block(of: "a", containing: 12) != nil && cache.block(of: "c", containing: 19) != nil)
        #expect(cache.counters.bytes <= cost * 4)
    }

    @Test func aBlockLargerThanAQuarterOfTheBudgetIsNotCachedAndAZeroBudgetCachesNothing() {
        let big = block("a", 0..<10, size: 1000)
        let cache = BlockCache(budgetBytes: BlockCache.cost(of: big) * 3)
        cache.insert(stream: "a", firstVersion: 0, events: big)
        #expect(cache.block(of: "a", containing: 0) == nil)
        let off = BlockCache(budgetBytes: 0)
        off.insert(stream: "a", firstVersion: 0, events: block("a", 0..<1))
        #expect(off.block(of: "a", containing: 0) == nil && off.counters.bytes == 0)
    }

    /// Through the store: each block is read from its file once (one miss), then
    /// served from the cache, and the counters in `stats()` say so. `$all`
    /// keeps its own window of blocks (``AllReadWindow``) and leaves the cache alone.
    @Test func aStoreReadsEachBlockFromItsFileOnceAndCountsHitsAndMisses() async throws {
        let dir = TemporaryDirectory()
        var written: [String] = []
        for session in 0..<3 {  // each session's close writes one block
            let store = try await EventStore.open(at: dir.path, configuration: .testing())
            for i in 0..<10 {
                written.append("\(session)-\(i)")
                try await store.append(to: "s", events: [event(written.last!)])
            }
            try await store.close()
        }
        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        let first = try await store.read(stream: "s").collect()
        #expect(first.map(text) == written.map { "{\"v\":\"\($0)\"}" })
        // At least one block per session (more if a checkpoint fell inside one).
        let blocks = store.stats().blockCacheMisses
        #expect(blocks >= 3)
        #expect(store.stats().blockCacheHits == 0)
        let again = try await store.read(stream: "s").collect()
        let all = try await store.readAll().collect()
        #expect(again.map(\.id) == first.map(\.id) && all.map(\.id) == first.map(\.id))
        let stats = store.stats()
        #expect(stats.blockCacheMisses == blocks, "every later read is a hit")
        #expect(stats.blockCacheHits >= blocks)
        #expect(stats.blockCacheBytes > 0)
        try await store.close()
    }

    /// The block cache and the `$all` windows share one limit: a window taking
    /// room evicts the cache's oldest blocks, and the cache keeps only what the
    /// windows leave. Before, each had a budget of its own and a store that
    /// served stream reads and then `$all` held both in full.
    @Test func theCacheAndTheAllWindowsStayWithinOneSharedLimit() {
        let one = block("a", 0..<10)
        let cost = BlockCache.cost(of: one)
        let cache = BlockCache(budgetBytes: cost * 4)
        let windows = DecodedBlockBudget(limit: cost * 5, sharedWith: cache)
        for i in 0..<4 { cache.insert(stream: "s\(i)", firstVersion: 0, events: block("s\(i)", 0..<10)) }
        #expect(cache.heldBytes == cost * 4)
        // A window takes three blocks' worth: the cache gives up its two oldest.
        #expect(windows.take(cost * 3))
        #expect(windows.inUse + cache.heldBytes <= cost * 5)
        #expect(cache.block(of: "s0", containing: 0) == nil && cache.block(of: "s1", containing: 0) == nil)
        #expect(cache.block(of: "s3", containing: 0) != nil)
        // While the windows hold that, the cache keeps at most two blocks.
        for i in 4..<8 { cache.insert(stream: "s\(i)", firstVersion: 0, events: block("s\(i)", 0..<10)) }
        #expect(cache.heldBytes <= cost * 2)
        #expect(windows.inUse + cache.heldBytes <= cost * 5)
        // More than the limit is refused, whatever the cache holds.
        #expect(!windows.take(cost * 3))
        windows.give(cost * 3)
        for i in 8..<12 { cache.insert(stream: "s\(i)", firstVersion: 0, events: block("s\(i)", 0..<10)) }
        #expect(cache.heldBytes == cost * 4)
    }
}
