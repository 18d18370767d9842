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
/// Memory: by catalog number, the name (16 bytes, a reference to the shared
/// copy, no copy of its own), and an open-addressing table of 8-byte slots at
/// most half full: about 32 bytes per stream split this session.
/// Owned by the splitter's thread (it lives in `Splitter.Pending`).
struct StreamNameCache {
    /// By catalog number: the stream's shared name, or nil if not cached.
    private var names: [String?] = []
    /// 0 is empty, else the top 32 bits of the name's hash above the catalog number + 1.
    private var slots: [UInt64] = []
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
        let hash = Self.hash(bytes, seed: seed)
        let mask = slots.count - 1
        var slot = Int(truncatingIfNeeded: hash >> shift)
        while case let stored = slots[slot], stored != 0 {
            if stored >> 32 == hash >> 32 {
                let number = Int(truncatingIfNeeded: stored & 0xFFFF_FFFF) - 1
                if let name = names[number], Self.name(name, is: bytes) { return (UInt32(number), name) }
            }
            slot = (slot + 1) & mask
        }
        return nil
    }

    /// Caches stream `number` under its name's bytes; the name must be the
    /// catalog's settled copy. A number cached already is left as it is.
    mutating func insert(number: UInt32, name: String) {
        let n = Int(number)
        if n < names.count, names[n] != nil { return }
        if n >= names.count { names.append(contentsOf: repeatElement(nil, count: max(n + 1 - names.count, names.count / 2))) }
        names[n] = name
        if (count + 1) * 2 > slots.count { grow() }
        var copy = name
        let hash = copy.withUTF8 { Self.hash(UnsafeRawBufferPointer($0), seed: seed) }
        place((hash & ~0xFFFF_FFFF) | (UInt64(number) + 1))
        count += 1
    }

    private mutating func place(_ value: UInt64) {
        let mask = slots.count - 1
        var slot = Int(truncatingIfNeeded: value >> shift)
        while slots[slot] != 0 { slot = (slot + 1) & mask }
        slots[slot] = value
    }

    /// Doubles the table (at least 1,024 slots) and places every entry again
    /// by its stored hash bits (no name is read).
    private mutating func grow() {
        let old = slots
        let size = max(1024, old.count * 2)
        slots = [UInt64](repeating: 0, count: size)
        shift = UInt64(64 - size.trailingZeroBitCount)
        for stored in old where stored != 0 { place(stored) }
    }

    private static func name(_ name: String, is bytes: UnsafeRawBufferPointer) -> Bool {
        var name = name
        return name.withUTF8 { utf8 in
            utf8.count == bytes.count && (utf8.isEmpty || memcmp(utf8.baseAddress!, bytes.baseAddress!, utf8.count) == 0)
        }
    }

    /// A seeded hash of `bytes`, eight at a time (a stream name is up to a few
    /// hundred bytes, typically a dozen or two).
    static func hash(_ bytes: UnsafeRawBufferPointer, seed: UInt64) -> UInt64 {
        let m: UInt64 = 0xD6E8_FEB8_6659_FD93
        var h = seed ^ (UInt64(bytes.count) &* 0x9E37_79B9_7F4A_7C15)
        var i = 0
        while i + 8 <= bytes.count {
            h = (h ^ bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* m
            h ^= h >> 32
            i += 8
        }
        var tail: UInt64 = 0
        var bits: UInt64 = 0
        while i < bytes.count {
            tail |= UInt64(bytes[i]) << bits
            bits += 8
            i += 1
        }
        h = (h ^ tail) &* m
        h ^= h >> 29
        return h
    }
}
