import Glibc

/// The last event type made into a `String` while decoding, reused while the
/// next entries carry the same bytes.
///
/// Why: every decoded event needs its type as a `String`, and making one from
/// bytes validates the UTF-8 each time (about 200 instructions for a short
/// ASCII type, a tenth of what handing out a `$all` event costs). The events
/// of one stream, and of most stores, share a handful of types, so comparing
/// the bytes with the previous type's is far cheaper, and the result is the
/// same `String` (equal bytes, equal string). Types of 4 to 16 bytes (most)
/// are compared as two overlapping words, the first and the last 4 or 8 bytes,
/// without a call to `memcmp`.
struct EventTypeCache {
    private var bytes: [UInt8] = []
    private var string = ""
    /// The first and last word of `bytes` when it has 4 to 16 of them (see ``words(_:)``).
    private var head: UInt64 = 0
    private var tail: UInt64 = 0

    /// The type whose UTF-8 bytes are `raw` (invalid sequences repaired, as `String(decoding:)` does).
    mutating func type(of raw: UnsafeRawBufferPointer) -> String {
        if raw.count == bytes.count {
            if let (h, t) = Self.words(raw) {
                if h == head && t == tail { return string }
            } else if raw.isEmpty || bytes.withUnsafeBytes({ memcmp($0.baseAddress!, raw.baseAddress!, raw.count) == 0 }) {
                return string
            }
        }
        bytes = Array(raw)
        string = String(decoding: raw, as: UTF8.self)
        (head, tail) = Self.words(raw) ?? (0, 0)
        return string
    }

    /// The first and the last 8 bytes (4 bytes, for 4 to 7) of `raw`, which
    /// together cover it, or nil outside 4...16 bytes. Two byte strings of one
    /// length in that range are equal exactly when both words are.
    @inline(__always)
    private static func words(_ raw: UnsafeRawBufferPointer) -> (UInt64, UInt64)? {
        switch raw.count {
        case 8...16:
            return (raw.loadUnaligned(as: UInt64.self), raw.loadUnaligned(fromByteOffset: raw.count - 8, as: UInt64.self))
        case 4..<8:
            return (UInt64(raw.loadUnaligned(as: UInt32.self)), UInt64(raw.loadUnaligned(fromByteOffset: raw.count - 4, as: UInt32.self)))
        default:
            return nil
        }
    }
}
