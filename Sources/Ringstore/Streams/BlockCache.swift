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
///
/// **A block is kept the second time it is decoded**, not the first (the
/// admission of 2Q and TinyLFU): a first decode only remembers the block's key
/// among the recently decoded (``RecentKeys``). Why: a reader of each stream's
/// newest event (a consumer polling, the bench's reader probe) decodes blocks
/// no one reads again; kept on their first decode they filled the whole budget
/// and pushed out blocks that were read again. A block read twice (a stream
/// read again, readers polling the same stream) is kept from then on. The one
/// exception is the block a page of a longer read stops inside
/// (``BlockOffer/readingOn``): it is kept at once, since the reader's next
/// page starts there (decoding it twice made reading one long stream 10 %
/// dearer in instructions).
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
        /// Blocks decoded once and not kept: the next decode of one of them keeps it.
        var decodedOnce: RecentKeys
    }

    let budgetBytes: Int
    private let state: Mutex<State>
    /// `state.bytes`, readable without the lock (the windows' budget checks it per block).
    private let held = Atomic<Int>(0)
    /// The budget shared with the `$all` windows (see ``DecodedBlockBudget``): set once, at open.
    private let shared = Mutex<(limit: Int, windows: WeakBudget)>((.max, WeakBudget()))

    /// Weak: the budget holds this cache, so a strong reference back would keep both alive after the store closes.
    private struct WeakBudget { weak var budget: DecodedBlockBudget? }

    init(budgetBytes: Int) {
        self.budgetBytes = budgetBytes
        // About as many keys as blocks of 4 KiB decoded would fill the budget
        // with (a split segment's entry over 10,000 streams costs 2-3 KiB here,
        // a stream file's block up to 1 MiB raw): 4,096 for 16 MiB, 8 bytes each.
        state = Mutex(State(decodedOnce: RecentKeys(capacity: min(1 << 16, max(256, budgetBytes >> 12)))))
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

    /// Offers a block just decoded: kept (evicting the oldest entries beyond
    /// the budget) if `keepAtOnce` or if it was decoded recently before, else
    /// only remembered as decoded once (see the type's notes).
    func insert(stream: String, firstVersion: UInt64, events: [RecordedEvent], keepAtOnce: Bool = false) {
        guard !events.isEmpty else { return }
        let cost = Self.cost(of: events)
        guard cost <= budgetBytes / 4 else { return }  // one huge block must not flush everything else
        let allowed = allowedBytes
        guard cost <= allowed else { return }
        // Hashed outside the lock, and only when the key is asked for.
        let key = keepAtOnce ? nil : Self.key(stream: stream, firstVersion: firstVersion)
        var evicted: [[RecordedEvent]] = []  // released outside the lock
        state.withLock { s in
            if let key, !s.decodedOnce.remove(key) {
                s.decodedOnce.insert(key)
                return
            }
            if s.blocks[stream]?.contains(where: { $0.firstVersion == firstVersion }) == true { return }
            s.blocks[stream, default: []].append(Block(firstVersion: firstVersion, events: events, cost: cost))
            s.order.append((stream, firstVersion))
            s.bytes += cost
            evict(&s, downTo: allowed, into: &evicted)
        }
    }

    /// Offers a block a read just decoded, as the read's `offer` says (see
    /// ``BlockOffer``). `stopsInside`: the read stopped before the block's last
    /// event in its direction, so its next page starts in this block.
    func offer(_ offer: BlockOffer, stream: String, firstVersion: UInt64, events: [RecordedEvent], stopsInside: Bool) {
        guard offer != .nothing, budgetBytes > 0 else { return }
        insert(stream: stream, firstVersion: firstVersion, events: events, keepAtOnce: offer == .readingOn && stopsInside)
    }

    /// A block's key among those decoded once.
    private static func key(stream: String, firstVersion: UInt64) -> UInt64 {
        var hasher = Hasher()
        hasher.combine(stream)
        hasher.combine(firstVersion)
        return UInt64(bitPattern: Int64(hasher.finalize()))
    }

    /// (hits, misses, bytes held), for statistics and tests.
    var counters: (hits: UInt64, misses: UInt64, bytes: Int) {
        state.withLock { ($0.hits, $0.misses, $0.bytes) }
    }
}

/// What a read offers the ``BlockCache`` of the blocks it decodes.
enum BlockOffer: Sendable {
    /// Nothing: the splitter's check of what is stored (it would make each
    /// block a reader had asked to be written ahead count as decoded twice).
    case nothing
    /// Each block decoded, kept on its second decode.
    case decoded
    /// As `decoded`, and the block the read stops inside is kept at once: the
    /// read is a page of a longer one, whose next page starts there.
    case readingOn
}

/// A bounded set of recent keys (hashes), the oldest forgotten first: the
/// blocks a ``BlockCache`` decoded once and did not keep. A collision of two
/// hashes only keeps a block one decode early.
struct RecentKeys: Sendable {
    let capacity: Int
    private var ring: [UInt64]
    private var next = 0
    private var members: Set<UInt64> = []

    init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
        ring = []
        ring.reserveCapacity(capacity)
        members.reserveCapacity(capacity)
    }

    var count: Int { members.count }

    /// Adds `key`, forgetting the oldest key once full.
    mutating func insert(_ key: UInt64) {
        guard members.insert(key).inserted else { return }
        if ring.count < capacity {
            ring.append(key)
            return
        }
        members.remove(ring[next])
        ring[next] = key
        next = (next + 1) % ring.count
    }

    /// Whether `key` was held; it is forgotten either way. Its slot in the ring
    /// stays until its turn comes: should the key be added again meanwhile,
    /// that turn forgets it early (a block then waits for one more decode).
    mutating func remove(_ key: UInt64) -> Bool {
        members.remove(key) != nil
    }
}
