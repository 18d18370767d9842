import Synchronization

/// Decoded stream-file blocks, shared by every reader of one store and kept
/// across the closing of files, within a byte budget.
///
/// Why: `$all` visits streams in journal order, so with thousands of streams
/// it touches one block of each stream per split round before coming back to
/// the next event of the first. Without a shared cache every such visit would
/// reopen the file and decode the block again. A split round writes about a
/// quarter of the journal, so a budget of that size lets `$all` decode each
/// block once. Lookups go by stream and version, so a hit needs neither an open
/// file nor its block list.
///
/// Blocks are immutable once written (stream files are append-only), so
/// entries never go stale. Eviction is first-in first-out, which for the
/// sequential scans this serves is as good as least-recently-used and cheaper.
final class BlockCache: Sendable {
    private struct Block {
        var firstVersion: UInt64
        var events: [RecordedEvent]
        var cost: Int
    }

    private struct State: ~Copyable {
        var blocks: [String: [Block]] = [:]
        /// Insertion order, for eviction: (stream, first version); entries before `head` are gone.
        var order: [(stream: String, firstVersion: UInt64)] = []
        var head = 0
        var bytes = 0
        var hits: UInt64 = 0
        var misses: UInt64 = 0
    }

    let budgetBytes: Int
    private let state = Mutex(State())
    /// `state.bytes`, readable without the lock (the windows' budget checks it per block).
    private let held = Atomic<Int>(0)
    /// The budget shared with the `$all` windows (see ``DecodedBlockBudget``): set once, at open.
    private let shared = Mutex<(limit: Int, windows: WeakBudget)>((.max, WeakBudget()))

    /// Weak: the budget holds this cache, so a strong reference back would keep both alive after the store closes.
    private struct WeakBudget { weak var budget: DecodedBlockBudget? }

    init(budgetBytes: Int) {
        self.budgetBytes = budgetBytes
    }

    /// Bytes held now.
    var heldBytes: Int { held.load(ordering: .relaxed) }

    /// From now on the cache keeps at most what `windows` leave of `limit`
    /// (the budget does not keep the windows' counter alive: it owns this cache).
    func shareLimit(_ limit: Int, windows: DecodedBlockBudget) {
        shared.withLock { $0 = (limit, WeakBudget(budget: windows)) }
    }

    /// The bytes this cache may hold now: its own budget, less what the windows hold of a shared limit.
    private var allowedBytes: Int {
        let (limit, windows) = shared.withLock { ($0.limit, $0.windows.budget) }
        guard let windows else { return budgetBytes }
        return max(0, min(budgetBytes, limit - windows.inUse))
    }

    /// Evicts the oldest blocks until at most `bytes` are held.
    func shrink(toAtMost bytes: Int) {
        var evicted: [[RecordedEvent]] = []  // released outside the lock
        state.withLock { s in evict(&s, downTo: bytes, into: &evicted) }
    }

    private func evict(_ s: inout State, downTo bytes: Int, into evicted: inout [[RecordedEvent]]) {
        while s.bytes > bytes, s.head < s.order.count {
            let (oldStream, oldVersion) = s.order[s.head]
            s.head += 1
            if var list = s.blocks[oldStream], let i = list.firstIndex(where: { $0.firstVersion == oldVersion }) {
                s.bytes -= list[i].cost
                evicted.append(list.remove(at: i).events)
                s.blocks[oldStream] = list.isEmpty ? nil : list
            }
        }
        if s.head > 1024, s.head * 2 > s.order.count {
            s.order.removeFirst(s.head)
            s.head = 0
        }
        held.store(s.bytes, ordering: .relaxed)
    }

    /// Approximate memory held by decoded events (payload plus per-event overhead).
    static func cost(of events: [RecordedEvent]) -> Int {
        events.reduce(0) { $0 + 160 + $1.data.count + $1.metadata.count }
    }

    /// The cached block of `stream` holding `version`: its events and the first one's version.
    /// A lookup that will be followed by another before the file is read passes
    /// `countMiss: false`, so that one file read counts as one miss.
    func block(of stream: String, containing version: UInt64, countMiss: Bool = true) -> (firstVersion: UInt64, events: [RecordedEvent])? {
        state.withLock { s in
            guard let blocks = s.blocks[stream],
                  let block = blocks.first(where: { version >= $0.firstVersion && version < $0.firstVersion + UInt64($0.events.count) })
            else {
                if countMiss { s.misses += 1 }
                return nil
            }
            s.hits += 1
            return (block.firstVersion, block.events)
        }
    }

    /// Remembers a decoded block, evicting the oldest entries beyond the budget.
    func insert(stream: String, firstVersion: UInt64, events: [RecordedEvent]) {
        guard !events.isEmpty else { return }
        let cost = Self.cost(of: events)
        guard cost <= budgetBytes / 4 else { return }  // one huge block must not flush everything else
        let allowed = allowedBytes
        guard cost <= allowed else { return }
        var evicted: [[RecordedEvent]] = []  // released outside the lock
        state.withLock { s in
            if s.blocks[stream]?.contains(where: { $0.firstVersion == firstVersion }) == true { return }
            s.blocks[stream, default: []].append(Block(firstVersion: firstVersion, events: events, cost: cost))
            s.order.append((stream, firstVersion))
            s.bytes += cost
            evict(&s, downTo: allowed, into: &evicted)
        }
    }

    /// (hits, misses, bytes held), for statistics and tests.
    var counters: (hits: UInt64, misses: UInt64, bytes: Int) {
        state.withLock { ($0.hits, $0.misses, $0.bytes) }
    }
}
