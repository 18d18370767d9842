#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import CRingstoreSupport
import Glibc

extension UUID {
    /// A fresh event ID, unique without a system call per ID.
    ///
    /// Foundation's `UUID()` costs about 2.5 µs here and even glibc's
    /// `arc4random_buf` makes a `getrandom` system call every time; with one ID
    /// per event that shows up in profiles. Event IDs must be unique, not
    /// unpredictable, so this takes 64 random bits once per process and 64 bits
    /// from a counter (started at a random value) passed through a bijective
    /// mixer (the SplitMix64 finalizer): unique within the process by construction
    /// (the counter hands each thread blocks of numbers, so that threads do not
    /// contend for it on every ID), and across
    /// processes as unlikely to collide as two random 58-bit prefixes. The
    /// result is laid out as an RFC 4122 version-4 UUID.
    @usableFromInline
    static func newEventID() -> UUID {
        let n = rs_next_unique() &+ EventIDSource.counterSalt
        var z = n &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        var bytes: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &bytes) { buffer in
            buffer.storeBytes(of: EventIDSource.processBits.bigEndian, toByteOffset: 0, as: UInt64.self)
            buffer.storeBytes(of: z.bigEndian, toByteOffset: 8, as: UInt64.self)
            buffer[6] = (buffer[6] & 0x0F) | 0x40  // version 4
            buffer[8] = (buffer[8] & 0x3F) | 0x80  // RFC 4122 variant
        }
        return UUID(uuid: bytes)
    }
}

/// Per-process state behind ``Foundation/UUID/newEventID()``.
@usableFromInline
enum EventIDSource {
    static let processBits: UInt64 = {
        var bits: UInt64 = 0
        withUnsafeMutableBytes(of: &bits) { arc4random_buf($0.baseAddress!, 8) }
        return bits
    }()
    /// Random start for the counter, so that no two processes share the second half either.
    static let counterSalt: UInt64 = {
        var bits: UInt64 = 0
        withUnsafeMutableBytes(of: &bits) { arc4random_buf($0.baseAddress!, 8) }
        return bits
    }()
}
