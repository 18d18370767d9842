#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One stream's state as the writer sees it.
///
/// Kept small because there is one per stream the store has seen this session
/// (100,000 streams are 100,000 of these): the versions still in the ring are
/// one array of (position, ID) pairs — one allocation per stream, none once its
/// records have left the ring — and the first of them is derived from the count.
struct StreamState: Sendable {
    /// One event still in the ring: where its record is, and its ID (for recognising retried appends).
    struct RingEntry: Sendable {
        var position: UInt64
        var id: UUID
    }

    /// The next version in the low 63 bits, the deleted flag in the top one: 16
    /// bytes a stream instead of 24 (a version never reaches 2^63).
    private var packed: UInt64
    /// Versions `ringFirstVersion..<nextVersion`, in version order.
    var entries: [RingEntry] = []

    private static let deletedBit: UInt64 = 1 << 63

    /// The largest `nextVersion` a stream can have (so versions stay below it).
    ///
    /// Versions are read from disk (journal records, stream files), so whatever
    /// builds a `StreamState` checks against this first — recovery ends at a
    /// record past it, an append that would pass it is refused — and the
    /// preconditions below only guard that promise.
    static let versionLimit: UInt64 = deletedBit - 1

    init(nextVersion: UInt64, deleted: Bool = false) {
        precondition(nextVersion <= Self.versionLimit, "stream version out of range")
        packed = nextVersion | (deleted ? Self.deletedBit : 0)
    }

    /// Number of versions assigned so far: the next event gets this version.
    var nextVersion: UInt64 {
        get { packed & ~Self.deletedBit }
        set {
            precondition(newValue <= Self.versionLimit, "stream version out of range")
            packed = newValue | (packed & Self.deletedBit)
        }
    }

    /// Hard-deleted (tombstoned): every append is refused with `.streamDeleted`.
    var deleted: Bool {
        get { packed & Self.deletedBit != 0 }
        set { packed = newValue ? packed | Self.deletedBit : packed & ~Self.deletedBit }
    }

    /// Version of the first event whose record is still indexed in the ring.
    var ringFirstVersion: UInt64 { nextVersion - UInt64(entries.count) }

    /// The last version, or nil if the stream has no events.
    var currentVersion: UInt64? { nextVersion == 0 ? nil : nextVersion - 1 }
}

/// The in-memory index of what the ring holds: every stream's version and the
/// position and ID of each of its events still in the ring, plus the positions
/// of all events in journal order (for `$all` reads).
///
/// It is rebuilt by recovery and extended by the writer under its lock. Its size
/// is bounded by the ring: entries leave when their records leave the ring.
struct JournalIndex: Sendable {
    var streams = StreamTable()
    /// Positions of all events in the ring, ascending.
    var eventPositions: [UInt64] = []
    /// Room a stream's entries get at its first event after they were emptied:
    /// what the streams emptied at the last checkpoint typically held (at most
    /// 16 entries, 384 bytes), so that they are not regrown from one entry at
    /// every checkpoint inside the writer's lock.
    private(set) var entryCapacity = CapacityHint(limit: 16)

    func currentVersion(of stream: String) -> UInt64? {
        streams[stream]?.currentVersion
    }

    /// The position of `version` in `stream`, if indexed.
    func position(of stream: String, version: UInt64) -> UInt64? {
        guard let state = streams[stream], version >= state.ringFirstVersion, version < state.nextVersion else { return nil }
        return state.entries[Int(version - state.ringFirstVersion)].position
    }

    /// Drops the streams' entries of records before `position` (they have left
    /// the ring); ``forgetEventPositions(before:)`` drops the global list's.
    /// Only `touched` streams are visited: they must include every stream with
    /// entries before `position`. Streams keep their versions; only their ring
    /// entries go. Safe to do in several steps before the checkpoint moves: a
    /// stream without an entry for a version reads it from its stream file,
    /// which holds it durably by then.
    ///
    /// `touched` pairs each name with its hash (``StreamTable/hashSeed``), taken
    /// before the caller's lock; emptied entry arrays go to `released`, for the
    /// caller to free after it (see ``JournalWriter/releaseSpace(before:streams:)``).
    mutating func forgetEntries(before position: UInt64, of touched: some Collection<(name: String, hash: UInt64)>,
                                released: inout [[StreamState.RingEntry]]) {
        // Two passes (hence a collection), so that the slots' cache misses overlap
        // instead of following one another.
        for (_, hash) in touched { streams.prefetchSlot(hashed: hash) }
        for (name, hash) in touched {
            guard let slot = streams.slot(of: name, hashed: hash) else { continue }
            if let emptied = streams[at: slot].forget(before: position) {
                entryCapacity.note(length: emptied.count)
                released.append(emptied)
            }
        }
    }

    /// Drops the global list's positions before `position`. It must move with the
    /// checkpoint, in one lock section: `$all` readers take "every event from
    /// the checkpoint on is listed" from the two read together.
    mutating func forgetEventPositions(before position: UInt64) {
        let dropped = eventPositions.partitioningIndex { $0 >= position }
        if dropped > 0 { eventPositions.removeFirst(dropped) }
        entryCapacity.update()  // once per checkpoint, after its streams' entries went
    }

    /// Adds the events of one append (versions from the stream's next version on).
    /// `slot` is the stream's entry if the caller already looked it up.
    mutating func record(stream: String, at slot: StreamTable.Slot?, positions: [UInt64], ids: [UUID]) {
        let slot = slot ?? streams.slot(for: stream, inserting: StreamState(nextVersion: 0))
        streams[at: slot].append(positions: positions, ids: ids)
        eventPositions.append(contentsOf: positions)
    }

    /// Makes room in stream `slot`'s entries for `count` more events (an append's).
    mutating func reserve(_ count: Int, at slot: StreamTable.Slot) {
        streams[at: slot].reserve(max(count, entryCapacity.capacity))
    }

    /// Adds one event of an append to stream `slot`, at its next version. An
    /// append's events are recorded one by one as they are encoded (no arrays
    /// of positions and IDs per append).
    mutating func record(at slot: StreamTable.Slot, position: UInt64, id: UUID) {
        streams[at: slot].append(position: position, id: id, reserving: entryCapacity.capacity)
        eventPositions.append(position)
    }

    /// Adds events found by recovery: `firstVersion` is where the stream's events in the ring begin.
    mutating func recordRecovered(stream: String, firstVersion: UInt64, positions: [UInt64], ids: [UUID]) {
        let slot = streams.slot(for: stream, inserting: StreamState(nextVersion: firstVersion))
        streams[at: slot].append(positions: positions, ids: ids)
        eventPositions.append(contentsOf: positions)
    }
}

extension StreamState {
    /// Returns the entries' storage when all of them go, for the caller to free.
    fileprivate mutating func forget(before position: UInt64) -> [RingEntry]? {
        let dropped = entries.partitioningIndex { $0.position >= position }
        guard dropped > 0 else { return nil }
        if dropped == entries.count {
            // Release the storage: with 100,000 streams, emptied arrays that keep
            // their capacity would hold tens of megabytes for nothing.
            var emptied: [RingEntry] = []
            swap(&emptied, &entries)
            return emptied
        }
        entries.removeFirst(dropped)
        return nil
    }

    fileprivate mutating func append(positions newPositions: [UInt64], ids newIDs: [UUID]) {
        reserve(newPositions.count)
        for (position, id) in zip(newPositions, newIDs) { append(position: position, id: id) }
    }

    fileprivate mutating func reserve(_ count: Int) {
        if entries.isEmpty { entries.reserveCapacity(count) }
    }

    fileprivate mutating func append(position: UInt64, id: UUID, reserving capacity: Int = 1) {
        if capacity > 1 && entries.isEmpty { entries.reserveCapacity(capacity) }
        entries.append(RingEntry(position: position, id: id))
        nextVersion += 1
    }
}
