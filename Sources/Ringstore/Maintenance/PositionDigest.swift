/// An order-dependent fingerprint of a sequence of journal positions, so the
/// verifier can check the global index against the stored events keeping a
/// few words per stream instead of every event's position.
///
/// A polynomial hash modulo 2⁶⁴ over mixed positions: `hash = hash·R + mix(p)`.
/// Two digests of consecutive runs combine (``append(_:)-swift.method``), so runs
/// digested separately (a stream file, then split-segment entries) give the
/// digest of the whole. Not cryptographic: it detects the index and the stream
/// files disagreeing, which only a bug or a forged entry with a valid checksum
/// could cause (a flipped byte fails a CRC first); the verifier then names the
/// stream and its version range.
struct PositionDigest: Equatable, Sendable {
    private static let radix: UInt64 = 0x9E37_79B9_7F4A_7C15 | 1
    private(set) var count = 0
    private(set) var hash: UInt64 = 0
    /// radix^count: what a run appended after this one multiplies the hash by.
    private var scale: UInt64 = 1

    init() {}

    mutating func add(_ position: UInt64) {
        hash = hash &* Self.radix &+ Self.mix(position)
        scale = scale &* Self.radix
        count += 1
    }

    /// This run followed by `next`.
    mutating func append(_ next: PositionDigest) {
        hash = hash &* next.scale &+ next.hash
        scale = scale &* next.scale
        count += next.count
    }

    /// SplitMix64's finaliser: neighbouring positions give unrelated words.
    private static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
