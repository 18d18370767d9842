/// The seeded hash of a stream name's bytes that the store's own tables use
/// (the writer's ``StreamTable``, the splitter's ``StreamNameCache``) instead
/// of `Hasher`'s SipHash: about 40 instructions for a 16-byte name against
/// about 350. Names come from clients, so each table draws its own random
/// seed: without it they could choose names that all probe the same run (a
/// collision only lengthens a probe: keys are compared whole).
enum NameHash {
    /// A seeded multiply-xorshift hash of `bytes`, 8 at a time, and whether
    /// they are all ASCII (no byte ≥ 0x80). The last word overlaps the one
    /// before rather than being assembled byte by byte (the count is mixed in
    /// first, so names that differ only in length still differ).
    static func hash(_ bytes: UnsafeRawBufferPointer, seed: UInt64) -> (hash: UInt64, ascii: Bool) {
        let count = bytes.count
        var h = seed ^ (UInt64(count) &* 0x9E37_79B9_7F4A_7C15)
        var highBits: UInt64 = 0
        func mix(_ word: UInt64) {
            highBits |= word
            h = (h ^ word) &* 0xBF58_476D_1CE4_E5B9
            h ^= h >> 31
        }
        if count >= 8 {
            var offset = 0
            while offset + 8 <= count {
                mix(bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
                offset += 8
            }
            if offset < count { mix(bytes.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self)) }
        } else if count >= 4 {
            let low = UInt64(bytes.loadUnaligned(as: UInt32.self))
            let high = UInt64(bytes.loadUnaligned(fromByteOffset: count - 4, as: UInt32.self))
            mix(low | high << 32)
        } else if count > 0 {
            mix(UInt64(bytes[0]) | UInt64(bytes[count / 2]) << 8 | UInt64(bytes[count - 1]) << 16)
        }
        h = (h ^ (h >> 32)) &* 0xD6E8_FEB8_6659_FD93
        return (h ^ (h >> 29), highBits & 0x8080_8080_8080_8080 == 0)
    }
}
