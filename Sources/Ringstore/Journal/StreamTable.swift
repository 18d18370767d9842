/// The writer's table of streams: each stream's name beside its
/// ``StreamState``, in one flat open-addressing array (linear probing, at most
/// seven eighths full, a power of two long).
///
/// Every append looks its stream up here under the writer's lock. It was a
/// `[String: StreamState]`: Swift's `Dictionary` hashes a `String` with SipHash
/// (about 350 instructions per lookup with the probing) and keeps keys and
/// values in two arrays, so finding an entry touched two cache lines far apart.
/// Here a slot holds both (32 bytes, as the dictionary's key and value did),
/// and the hash is a seeded multiply-xorshift over the name's bytes
/// (``NameHash``), 8 at a time (about 40 instructions for a 16-byte name).
///
/// **Names are compared as Swift compares `String`s**: canonically equivalent
/// names (`"caf\u{E9}"`, `"cafe\u{301}"`, the KELVIN SIGN and `K`) are one key,
/// so that the writer can find the stored one and refuse the other (see
/// "Stream identity" in the architecture notes). The hash must therefore be
/// equal for equivalent names: it is taken over the name's NFC form, which is
/// what `String` equality compares. An ASCII name is its own NFC form, so the
/// common case hashes the bytes as they are; only a name with a byte ≥ 0x80 is
/// normalised first (an allocation, on such names alone).
///
/// The seed is random per table: names come from clients, and without it they
/// could choose names that all probe the same run. A collision only lengthens
/// a probe: keys are compared whole.
///
/// Streams are never removed (an entry outlives its records in the ring: it
/// holds the stream's next version), so the table needs no tombstones. An empty
/// name marks a free slot: a stream name is at least one byte long.
struct StreamTable: Sendable {
    /// A stream's position in the table; valid until the next insertion
    /// (growth moves every entry).
    typealias Slot = Int

    private struct Entry: Sendable {
        var name: String
        var state: StreamState
    }

    private var entries: [Entry] = []
    /// `entries.count - 1` once allocated.
    private var mask = 0
    private let seed: UInt64 = .random(in: .min ... .max)
    /// Streams held.
    private(set) var count = 0

    init() {}

    /// The slot of the stream named `name` (or of a canonically equivalent
    /// name: compare ``name(at:)`` byte for byte if that matters), if held.
    func slot(of name: String) -> Slot? {
        guard count > 0 else { return nil }
        return slot(of: name, hashed: Self.hash(name, seed: seed))
    }

    /// The seed ``hash(_:seed:)`` takes for this table: a caller that looks up
    /// many names under a lock hashes them before taking it.
    var hashSeed: UInt64 { seed }

    /// ``slot(of:)`` for a name whose hash (with ``hashSeed``) is known.
    func slot(of name: String, hashed hash: UInt64) -> Slot? {
        guard count > 0 else { return nil }
        var slot = Int(truncatingIfNeeded: hash) & mask
        while true {
            let stored = entries[slot].name
            if stored.isEmpty { return nil }
            if stored == name { return slot }
            slot = (slot + 1) & mask
        }
    }

    /// Asks for the cache line of the slot where a lookup of `hash` starts (a
    /// hint: it changes nothing).
    mutating func prefetchSlot(hashed hash: UInt64) {
        Prefetch.element(of: &entries, at: Int(truncatingIfNeeded: hash) & mask)
    }

    /// Asks for the cache line that starts the storage of the ring entries of the
    /// stream at `slot` (its header: count and capacity), which an append
    /// updates: a hint, taken without touching the storage (no reference count).
    mutating func prefetchEntries(at slot: Slot) {
        Prefetch.arrayStorage(of: &entries[slot].state.entries)
    }

    /// The stored name at `slot`: the table's copy, shared by every table that
    /// names the stream.
    func name(at slot: Slot) -> String { entries[slot].name }

    /// The state at `slot`, read or changed in place (no copy of its arrays).
    subscript(at slot: Slot) -> StreamState {
        get { entries[slot].state }
        _modify { yield &entries[slot].state }
    }

    /// The state of `name`, if held. Setting a state adds the stream if it is
    /// not held; setting nil is not allowed (streams are never removed).
    subscript(name: String) -> StreamState? {
        get { slot(of: name).map { entries[$0].state } }
        set {
            guard let newValue else { preconditionFailure("StreamTable never removes a stream") }
            entries[slot(for: name, inserting: newValue)].state = newValue
        }
    }

    /// The slot of `name`, added with `state()` if not held yet.
    mutating func slot(for name: String, inserting state: @autoclosure () -> StreamState) -> Slot {
        precondition(!name.isEmpty, "a stream name is at least one byte long")
        if let slot = slot(of: name) { return slot }
        // Seven eighths, not the dictionary's three quarters: 100,000 streams fit
        // 131,072 slots (4 MiB) rather than 262,144 (8 MiB). A found stream (every
        // append's case) then probes 2.6 slots on average, a miss (once per new
        // stream) 9.4; just before the table doubles, 4.5 and 32.5. Slots are 32
        // bytes: a found stream's probe stays within one or two cache lines.
        if (count + 1) * 8 > entries.count * 7 { grow() }
        let slot = freeSlot(for: Self.hash(name, seed: seed))
        entries[slot] = Entry(name: name, state: state())
        count += 1
        return slot
    }

    /// Every stream held, in no particular order.
    var names: [String] { entries.compactMap { $0.name.isEmpty ? nil : $0.name } }

    /// `transform` of every stream held that gives a value, in no particular order.
    func compactMap<T>(_ transform: (_ name: String, _ state: StreamState) throws -> T?) rethrows -> [T] {
        var result: [T] = []
        for entry in entries where !entry.name.isEmpty {
            if let value = try transform(entry.name, entry.state) { result.append(value) }
        }
        return result
    }

    private func freeSlot(for hash: UInt64) -> Slot {
        var slot = Int(truncatingIfNeeded: hash) & mask
        while !entries[slot].name.isEmpty { slot = (slot + 1) & mask }
        return slot
    }

    /// Doubles the table (at least 16 slots) and places every entry again.
    private mutating func grow() {
        let old = entries
        let size = max(16, old.count * 2)
        entries = Array(repeating: Entry(name: "", state: StreamState(nextVersion: 0)), count: size)
        mask = size - 1
        for entry in old where !entry.name.isEmpty {
            entries[freeSlot(for: Self.hash(entry.name, seed: seed))] = entry
        }
    }

    /// The hash of `name`'s NFC form (see the type's notes).
    static func hash(_ name: String, seed: UInt64) -> UInt64 {
        // Native and small strings lend their UTF-8 without a copy of the
        // string (a `var` copy and `withUTF8` cost a retain and a release).
        let bytesHash = name.utf8.withContiguousStorageIfAvailable { NameHash.hash(UnsafeRawBufferPointer($0), seed: seed) }
            ?? Array(name.utf8).withUnsafeBytes { NameHash.hash($0, seed: seed) }
        if bytesHash.ascii { return bytesHash.hash }
        return name._nfcCodeUnits.withUnsafeBytes { NameHash.hash($0, seed: seed).hash }
    }
}
