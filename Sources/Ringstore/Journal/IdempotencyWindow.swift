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
struct IdempotencyWindow: Sendable {
    struct Entry: Sendable {
        var stream: String
        var firstVersion: UInt64
        var count: Int
    }

    let capacity: Int
    private var entries: [UUID: Entry] = [:]
    private var order: [UUID] = []
    private var next = 0

    init(capacity: Int) {
        self.capacity = capacity
        entries.reserveCapacity(min(capacity, 1 << 16))
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

    /// Appends remembered.
    var count: Int { entries.count }

    func lookup(_ firstID: UUID) -> Entry? { entries[firstID] }

    mutating func remember(_ firstID: UUID, _ entry: Entry) {
        guard capacity > 0 else { return }
        if order.count < capacity {
            order.append(firstID)
        } else {
            let evicted = order[next]
            entries[evicted] = nil
            order[next] = firstID
            next = (next + 1) % capacity
        }
        entries[firstID] = entry
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
