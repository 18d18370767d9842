import Glibc

/// The last event type made into a `String` while decoding, reused while the
/// next entries carry the same bytes.
///
/// Why: every decoded event needs its type as a `String`, and making one from
/// bytes validates the UTF-8 each time (about 200 instructions for a short
/// ASCII type, a tenth of what handing out a `$all` event costs). The events
/// of one stream, and of most stores, share a handful of types, so comparing
/// the bytes with the previous type's is far cheaper, and the result is the
/// same `String` (equal bytes, equal string).
struct EventTypeCache {
    private var bytes: [UInt8] = []
    private var string = ""

    /// The type whose UTF-8 bytes are `raw` (invalid sequences repaired, as `String(decoding:)` does).
    mutating func type(of raw: UnsafeRawBufferPointer) -> String {
        let same = raw.count == bytes.count && bytes.withUnsafeBytes { cached in
            raw.isEmpty || memcmp(cached.baseAddress!, raw.baseAddress!, raw.count) == 0
        }
        if same { return string }
        bytes = Array(raw)
        string = String(decoding: raw, as: UTF8.self)
        return string
    }
}
