#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One append as the journal holds it: what the idempotency window keeps.
struct RecentAppend: Sendable {
    var firstID: UUID
    var stream: String
    var firstVersion: UInt64
    var count: Int
}

/// The first event IDs of the most recent appends, so that a retried append
/// with ``ExpectedVersion/any`` (or `.streamExists`) is recognised.
///
/// It is only a pointer to where the first append may be: a hit is confirmed by
/// comparing every event ID of the retry with those stored at the versions it
/// names (in the ring or the stream file), so an entry that no longer matches
/// anything stored can never make an append count as written.
///
/// At open it is refilled from the journal (see ``JournalHistory``), so that it
/// survives a restart, clean or not, as far as the ring still holds the appends.
///
/// Every append remembers its first ID and forgets the oldest one, under the
/// writer's lock, so this is on the hot path. It was a `[UUID: Entry]`
/// dictionary beside an array of the IDs in order: each append then hashed
/// UUIDs with SipHash four to six times (the insert, the removal of the
/// evicted ID, and the removal's shifting back of the entries after it, each
/// hashed again), about 2,400 instructions of the writer's lock section, a
/// sixth of an append's. Now the appends sit in a ring in arrival order and an
/// open-addressing table of ring indices with their hashes (linear probing, at
/// most half full) finds them: one cheap hash of the ID's two halves per
/// lookup; removing and growing reuse the stored hashes.
///
/// The hash is a multiply-xorshift mix of the two halves with a per-window
/// random seed, not a keyed cryptographic hash: IDs come from clients, and the
/// seed keeps them from choosing colliding IDs without knowing it; collisions
/// could only lengthen probes, never give a wrong answer (keys are compared
/// whole).
///
/// When a first ID is remembered again while still in the window (an
/// `.exact` append may reuse an ID the window holds), the newest append is the
/// one found, for its whole stay in the window. (The dictionary forgot it as
/// soon as the older append left the window.)
struct IdempotencyWindow: Sendable {
    struct Entry: Sendable {
        var stream: String
        var firstVersion: UInt64
        var count: Int
    }

    /// An event ID as its two 64-bit halves: compared and hashed without going through `UUID`.
    private struct Key: Equatable {
        var high: UInt64
        var low: UInt64

        init(_ id: UUID) {
            (high, low) = withUnsafeBytes(of: id.uuid) {
                ($0.loadUnaligned(as: UInt64.self), $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            }
        }
    }

    private struct Remembered {
        var key: Key
        var entry: Entry
    }

    let capacity: Int
    /// The remembered appends in arrival order; once `capacity` are held, the
    /// oldest is at `next` and each new one replaces it.
    private var appends: [Remembered] = []
    private var next = 0
    /// Open addressing: 0 is empty, else the top 32 bits of the ID's hash
    /// above the index in `appends` + 1. A power of two long, at most half
    /// full. With the hash beside the index, a probe reads `appends` (another
    /// cache miss, at random) only for a likely match, and forgetting, shifting
    /// back and growing never do.
    private var slots: [UInt64] = []
    /// `64 - log2(slots.count)`: a slot is the top bits of the hash.
    private var shift: UInt64 = 64
    private let seed: UInt64 = .random(in: .min ... .max)
    /// Distinct first IDs remembered.
    private(set) var count = 0

    /// `capacity` is clamped to 2^30 (a slot keeps 32 bits of index and of
    /// hash, and the table at most 2^31 slots): more appends than that would
    /// not fit in memory anyway.
    init(capacity: Int) {
        self.capacity = min(capacity, 1 << 30)
    }

    /// A window holding the last `capacity` of `appends` (oldest first), each
    /// stream name stored once however many appends name it.
    init(capacity: Int, restoring appends: some Sequence<RecentAppend>) {
        self.init(capacity: capacity)
        var names: [String: String] = [:]
        for append in appends {
            let name = names[append.stream, default: append.stream]
            names[name] = name
            remember(append.firstID, Entry(stream: name, firstVersion: append.firstVersion, count: append.count))
        }
    }

    func lookup(_ firstID: UUID) -> Entry? {
        guard !slots.isEmpty else { return nil }
        let key = Key(firstID)
        let hash = self.hash(key)
        let mask = slots.count - 1
        var slot = home(hash)
        while case let stored = slots[slot], stored != 0 {
            if stored >> 32 == hash >> 32, appends[index(stored)].key == key { return appends[index(stored)].entry }
            slot = (slot + 1) & mask
        }
        return nil
    }

    /// Asks for the cache lines ``remember(_:_:)`` of `firstID` will touch in
    /// the table: the new ID's first slot and, once the window is full, the
    /// first slot of the append it evicts. A hint, issued early in the writer's
    /// lock section so that these misses overlap the stream lookup's.
    mutating func prefetch(for firstID: UUID) {
        guard capacity > 0, !slots.isEmpty else { return }
        Prefetch.element(of: &slots, at: home(hash(Key(firstID))))
        if appends.count == capacity {
            Prefetch.element(of: &slots, at: home(hash(appends[next].key)))
        }
    }

    mutating func remember(_ firstID: UUID, _ entry: Entry) {
        guard capacity > 0 else { return }
        let key = Key(firstID)
        let position: Int
        if appends.count < capacity {
            position = appends.count
            appends.append(Remembered(key: key, entry: entry))
        } else {
            position = next
            forget(position)
            appends[position] = Remembered(key: key, entry: entry)
            next = next + 1 == capacity ? 0 : next + 1
        }
        if (count + 1) * 2 > slots.count { grow() }
        let hash = self.hash(key)
        let value = hash & ~0xFFFF_FFFF | UInt64(position + 1)
        let mask = slots.count - 1
        var slot = home(hash)
        while case let stored = slots[slot], stored != 0 {
            if stored >> 32 == hash >> 32, appends[index(stored)].key == key {
                slots[slot] = value  // the newer append with this first ID
                return
            }
            slot = (slot + 1) & mask
        }
        slots[slot] = value
        count += 1
    }

    /// Removes the table's reference to `appends[position]` (about to be
    /// replaced), if it has one: not when its ID was remembered again since (the
    /// slot then holds the newer append). Closes the gap by shifting back the
    /// entries after it that probed past it.
    private mutating func forget(_ position: Int) {
        let mask = slots.count - 1
        var hole = home(hash(appends[position].key))
        while true {
            let stored = slots[hole]
            if stored == 0 { return }
            if index(stored) == position { break }
            hole = (hole + 1) & mask
        }
        var slot = (hole + 1) & mask
        while case let stored = slots[slot], stored != 0 {
            // An entry may fill the hole if the hole lies between its home slot and where it sits.
            if (slot &- home(stored)) & mask >= (slot &- hole) & mask {
                slots[hole] = stored
                hole = slot
            }
            slot = (slot + 1) & mask
        }
        slots[hole] = 0
        count -= 1
    }

    private func hash(_ key: Key) -> UInt64 {
        var z = key.high ^ seed ^ (key.low &* 0x9E37_79B9_7F4A_7C15)
        z = (z ^ (z >> 32)) &* 0xD6E8_FEB8_6659_FD93
        return z ^ (z >> 29)
    }

    /// The slot a hash (or a stored slot value: its top 32 bits are the hash's) starts probing at.
    private func home(_ hash: UInt64) -> Int { Int(truncatingIfNeeded: hash >> shift) }

    private func index(_ stored: UInt64) -> Int { Int(truncatingIfNeeded: stored & 0xFFFF_FFFF) - 1 }

    /// Doubles the table (at least 64 slots) and places every entry again.
    private mutating func grow() {
        let old = slots
        let size = max(64, old.count * 2)
        slots = [UInt64](repeating: 0, count: size)
        shift = UInt64(64 - size.trailingZeroBitCount)
        let mask = size - 1
        for stored in old where stored != 0 {
            var slot = home(stored)
            while slots[slot] != 0 { slot = (slot + 1) & mask }
            slots[slot] = stored
        }
    }
}

/// Keeps the last `capacity` appends handed to it, in order: recovery and the
/// history scan feed it every append they find, and only the newest matter.
struct RecentAppends: Sendable {
    let capacity: Int
    private var items: [RecentAppend] = []
    private var next = 0

    init(capacity: Int) { self.capacity = capacity }

    var count: Int { items.count }

    mutating func add(_ append: RecentAppend) {
        guard capacity > 0 else { return }
        if items.count < capacity {
            items.append(append)
        } else {
            items[next] = append
            next = (next + 1) % capacity
        }
    }

    /// Oldest first.
    var ordered: [RecentAppend] { Array(items[next...] + items[..<next]) }
}
