import Glibc
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The splitter's own map from a stream name's bytes, as a journal record
/// holds them, to the stream's catalog number and the shared copy of its name
/// (see `Splitter.catalogued`).
///
/// Why: with one-event appends over many streams every record starts a new
/// run, and finding a run's stream cost, per event, decoding the name into a
/// `String`, the catalog's lock and a SipHash of the name (the catalog is keyed
/// by `String`, which must equate canonically equivalent names, so it cannot
/// hash bytes), about 600 instructions. Here the record's bytes are hashed in
/// place with a seeded multiply-xorshift mix (names are client data: the seed
/// keeps them from choosing collisions, which could only lengthen probes) and
/// compared with `memcmp`: a hit is a stream with exactly these bytes, which is
/// what a stream is (see "Stream identity").
///
/// It only holds what the catalog said already: an entry is added once the
/// catalog has a stream under these bytes whose shared copy is settled (not
/// `shareable`: a name read from the catalog file is replaced by the writer's
/// copy once). Catalog numbers never change and names are never removed, so an
/// entry stays right for the splitter's life; a miss just takes the catalog path.
///
/// Memory: an open-addressing table at most four fifths full whose slots hold
/// the hash's top 32 bits, the number and the name (a reference to the shared
/// copy, or up to 15 bytes inline): 24 bytes a slot, 30 to 60 per stream split
/// this session. Half full at most, 100,000 streams took 262,144 slots (6 MiB,
/// and 9 MiB while growing, at the process's peak); four fifths fit them in
/// 131,072. A hit (nearly every lookup: a miss is a stream's first split this
/// session) then takes 3 probes at the fullest, 1.5 at half full, each a tag
/// compare in slots next to each other. The name sits in the slot, not in a second array by number: with
/// 10,000 streams a lookup is then one cache miss, not two (a `perf record` of
/// 256 writers showed both).
/// Owned by the splitter's thread (it lives in `Splitter.Pending`).
struct StreamNameCache {
    private struct Slot {
        /// The top 32 bits of the name's hash.
        var hash: UInt32
        var number: UInt32
        /// Nil: the slot is empty.
        var name: String?
    }

    private var slots: [Slot] = []
    /// `64 - log2(slots.count)`: a name's home slot is the top bits of its hash.
    private var shift: UInt64 = 64
    private let seed: UInt64
    /// Streams cached.
    private(set) var count = 0

    init(seed: UInt64 = .random(in: .min ... .max)) {
        self.seed = seed
    }

    /// The catalog number and shared name of the stream whose name has exactly `bytes`, if cached.
    func lookup(_ bytes: UnsafeRawBufferPointer) -> (number: UInt32, name: String)? {
        guard !slots.isEmpty else { return nil }
        let hash = NameHash.hash(bytes, seed: seed).hash
        let tag = UInt32(truncatingIfNeeded: hash >> 32)
        let mask = slots.count - 1
        var slot = Int(truncatingIfNeeded: hash >> shift)
        while let name = slots[slot].name {
            if slots[slot].hash == tag, Self.name(name, is: bytes) { return (slots[slot].number, name) }
            slot = (slot + 1) & mask
        }
        return nil
    }

    /// Caches stream `number` under its name's bytes; the name must be the
    /// catalog's settled copy. A name cached already is left as it is (the
    /// catalog gives a name's bytes one number).
    mutating func insert(number: UInt32, name: String) {
        var copy = name
        let hash = copy.withUTF8 { NameHash.hash(UnsafeRawBufferPointer($0), seed: seed).hash }
        if copy.withUTF8({ lookup(UnsafeRawBufferPointer($0)) }) != nil { return }
        if (count + 1) * 5 > slots.count * 4 { grow() }
        place(Slot(hash: UInt32(truncatingIfNeeded: hash >> 32), number: number, name: name))
        count += 1
    }

    private mutating func place(_ entry: Slot) {
        let mask = slots.count - 1
        var slot = Int(truncatingIfNeeded: (UInt64(entry.hash) << 32) >> shift)
        while slots[slot].name != nil { slot = (slot + 1) & mask }
        slots[slot] = entry
    }

    /// Doubles the table (at least 1,024 slots) and places every entry again
    /// by its stored hash bits (no name is hashed again).
    private mutating func grow() {
        let old = slots
        let size = max(1024, old.count * 2)
        slots = [Slot](repeating: Slot(hash: 0, number: 0, name: nil), count: size)
        shift = UInt64(64 - size.trailingZeroBitCount)
        for entry in old where entry.name != nil { place(entry) }
    }

    private static func name(_ name: String, is bytes: UnsafeRawBufferPointer) -> Bool {
        var name = name
        return name.withUTF8 { utf8 in
            utf8.count == bytes.count && (utf8.isEmpty || memcmp(utf8.baseAddress!, bytes.baseAddress!, utf8.count) == 0)
        }
    }
}
