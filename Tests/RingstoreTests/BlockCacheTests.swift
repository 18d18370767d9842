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

    /// Offers a block twice, as two decodes of it would: the second one keeps it.
    func decodeTwice(_ cache: BlockCache, _ stream: String, _ firstVersion: UInt64, _ events: [RecordedEvent]) {
        cache.insert(stream: stream, firstVersion: firstVersion, events: events)
        cache.insert(stream: stream, firstVersion: firstVersion, events: events)
    }

    @Test func findsTheBlockHoldingAVersionAndEvictsOldestFirstWithinTheBudget() {
        let one = block("a", 0..<10)
        let cost = BlockCache.cost(of: one)
        let cache = BlockCache(budgetBytes: cost * 4)
        decodeTwice(cache, "a", 0, one)
        decodeTwice(cache, "a", 10, block("a", 10..<20))
        decodeTwice(cache, "b", 0, block("b", 0..<10))
        #expect(cache.block(of: "a", containing: 15)?.firstVersion == 10)
        #expect(cache.block(of: "a", containing: 3)?.events.map(\.version) == Array(0..<10))
        #expect(cache.block(of: "a", containing: 20) == nil)
        #expect(cache.block(of: "c", containing: 0) == nil)
        // Two more blocks: the budget holds four, so the first one inserted goes.
        decodeTwice(cache, "c", 0, block("c", 0..<10))
        decodeTwice(cache, "c", 10, block("c", 10..<20))
        #expect(cache.block(of: "a", containing: 3) == nil)
        #expect(cache.block(of: "a", containing: 12) != nil && cache.block(of: "c", containing: 19) != nil)
        #expect(cache.counters.bytes <= cost * 4)
    }

    @Test func aBlockLargerThanAQuarterOfTheBudgetIsNotCachedAndAZeroBudgetCachesNothing() {
        let big = block("a", 0..<10, size: 1000)
        let cache = BlockCache(budgetBytes: BlockCache.cost(of: big) * 3)
        decodeTwice(cache, "a", 0, big)
        #expect(cache.block(of: "a", containing: 0) == nil)
        let off = BlockCache(budgetBytes: 0)
        decodeTwice(off, "a", 0, block("a", 0..<1))
        #expect(off.block(of: "a", containing: 0) == nil && off.counters.bytes == 0)
    }

    /// Through the store: the first read of a stream decodes each block from
    /// its file (one miss each) and keeps none; the second decodes them again
    /// and keeps them; every later read is served from the cache, and the
    /// counters in `stats()` say so. `$all` keeps its own window of blocks
    /// (``AllReadWindow``) and leaves the cache alone.
    @Test func aStoreKeepsABlockOnItsSecondDecodeAndCountsHitsAndMisses() async throws {
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
        #expect(store.stats().blockCacheHits == 0 && store.stats().blockCacheBytes == 0, "a block decoded once is not kept")
        let second = try await store.read(stream: "s").collect()
        #expect(store.stats().blockCacheMisses == 2 * blocks && store.stats().blockCacheBytes > 0)
        let third = try await store.read(stream: "s").collect()
        let all = try await store.readAll().collect()
        #expect(second.map(\.id) == first.map(\.id) && third.map(\.id) == first.map(\.id) && all.map(\.id) == first.map(\.id))
        let stats = store.stats()
        #expect(stats.blockCacheMisses == 2 * blocks, "every read after the second is a hit")
        #expect(stats.blockCacheHits >= blocks)
        try await store.close()
    }

    /// Blocks decoded once are remembered only by key, and only the most
    /// recent ones: a block whose first decode was forgotten needs two more.
    @Test func aBlockDecodedOnceIsRememberedOnlyAmongTheRecentOnes() {
        let cost = BlockCache.cost(of: block("a", 0..<10))
        let cache = BlockCache(budgetBytes: cost * 64)  // 256 keys remembered
        cache.insert(stream: "a", firstVersion: 0, events: block("a", 0..<10))
        #expect(cache.block(of: "a", containing: 0) == nil && cache.heldBytes == 0)
        // Another stream's block at the same version, or this stream's next one, is another key.
        cache.insert(stream: "b", firstVersion: 0, events: block("b", 0..<10))
        cache.insert(stream: "a", firstVersion: 10, events: block("a", 10..<20))
        #expect(cache.heldBytes == 0)
        cache.insert(stream: "a", firstVersion: 0, events: block("a", 0..<10))
        #expect(cache.block(of: "a", containing: 5)?.firstVersion == 0)
        // 256 other blocks decoded once push "b" out of the remembered keys.
        for i in 0..<256 { cache.insert(stream: "x\(i)", firstVersion: 0, events: block("x\(i)", 0..<1)) }
        cache.insert(stream: "b", firstVersion: 0, events: block("b", 0..<10))
        #expect(cache.block(of: "b", containing: 0) == nil)
        cache.insert(stream: "b", firstVersion: 0, events: block("b", 0..<10))
        #expect(cache.block(of: "b", containing: 0) != nil)
        #expect(cache.heldBytes == 2 * cost)
    }

    /// Reading a long stream page by page decodes each block once: the block a
    /// page stops inside is kept at once, so the next page finds it.
    @Test func pagesOfALongReadDecodeEachBlockOnce() async throws {
        let dir = TemporaryDirectory()
        var written = 0
        for _ in 0..<3 {
            // One append a session: a checkpoint never falls inside an append (its
            // events are acknowledged together), so each session is one block of 300.
            let store = try await EventStore.open(at: dir.path, configuration: .testing())
            try await store.append(to: "s", events: (0..<300).map { _ in event("\(written)") })
            written += 300
            try await store.close()
        }
        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        let all = try await store.read(stream: "s").collect()
        #expect(all.map(\.version) == Array(0..<UInt64(written)))
        // Pages of 512 stop inside the second block: it is decoded for the first
        // page and found by the second, so each block is read once.
        let stats = store.stats()
        #expect(stats.blockCacheMisses == 3, "one decode per block")
        #expect(stats.blockCacheHits >= 1)
        // The other two were decoded once and not kept; reading the newest
        // event decodes the last block again, and that keeps it.
        let kept = stats.blockCacheBytes
        _ = try await store.read(stream: "s", from: .end, direction: .backwards, maxCount: 1).collect()
        #expect(store.stats().blockCacheMisses == 4 && store.stats().blockCacheBytes == 2 * kept)
        _ = try await store.read(stream: "s", from: .end, direction: .backwards, maxCount: 1).collect()
        #expect(store.stats().blockCacheMisses == 4, "then served from the cache")
        try await store.close()
    }

    @Test func aBlockOfferedToKeepAtOnceIsKeptOnItsFirstDecode() {
        let cache = BlockCache(budgetBytes: BlockCache.cost(of: block("a", 0..<10)) * 8)
        cache.insert(stream: "a", firstVersion: 0, events: block("a", 0..<10), keepAtOnce: true)
        #expect(cache.block(of: "a", containing: 9)?.firstVersion == 0)
    }

    @Test func recentKeysForgetTheOldestBeyondTheirCapacity() {
        var keys = RecentKeys(capacity: 3)
        for k: UInt64 in [1, 2, 3] { keys.insert(k) }
        keys.insert(2)  // already held: nothing changes
        keys.insert(4)  // forgets 1
        #expect(keys.count == 3)
        var removed = [1, 3, 3].map { keys.remove($0) }
        #expect(removed == [false, true, false])
        keys.insert(5)  // 2's turn: forgets 2
        removed = [4, 5, 2].map { keys.remove($0) }
        #expect(removed == [true, true, false])
        #expect(keys.count == 0)
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
        for i in 0..<4 { decodeTwice(cache, "s\(i)", 0, block("s\(i)", 0..<10)) }
        #expect(cache.heldBytes == cost * 4)
        // A window takes three blocks' worth: the cache gives up its two oldest.
        #expect(windows.take(cost * 3))
        #expect(windows.inUse + cache.heldBytes <= cost * 5)
        #expect(cache.block(of: "s0", containing: 0) == nil && cache.block(of: "s1", containing: 0) == nil)
        #expect(cache.block(of: "s3", containing: 0) != nil)
        // While the windows hold that, the cache keeps at most two blocks.
        for i in 4..<8 { decodeTwice(cache, "s\(i)", 0, block("s\(i)", 0..<10)) }
        #expect(cache.heldBytes <= cost * 2)
        #expect(windows.inUse + cache.heldBytes <= cost * 5)
        // More than the limit is refused, whatever the cache holds.
        #expect(!windows.take(cost * 3))
        windows.give(cost * 3)
        for i in 8..<12 { decodeTwice(cache, "s\(i)", 0, block("s\(i)", 0..<10)) }
        #expect(cache.heldBytes == cost * 4)
    }
}
