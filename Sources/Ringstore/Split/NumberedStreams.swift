/// Streams, each at most once, by catalog number, with the shared copy of each
/// name: what one checkpoint covers (the stream files it syncs, the streams
/// whose ring entries it releases).
///
/// Why not a `Set<String>`: with one-event appends over many streams nearly
/// every stream is written between two checkpoints, and the set hashed each
/// name with SipHash when it was inserted and again when the set was filtered
/// for readers, per stream per checkpoint. Catalog numbers are dense (0, 1, 2,
/// … in order of first split), so one bit per number says whether a stream is
/// in already: 12.5 KiB for 100,000 streams, kept from checkpoint to
/// checkpoint.
///
/// Owned by the splitter's thread (it lives in `Splitter.Pending`).
struct NumberedStreams {
    /// Bit `n % 64` of word `n / 64`: stream `n` is in.
    private var present: [UInt64] = []
    /// The streams in order of insertion.
    private(set) var names: [String] = []
    private(set) var numbers: [UInt32] = []

    var isEmpty: Bool { numbers.isEmpty }
    var count: Int { numbers.count }

    func contains(_ number: UInt32) -> Bool {
        let word = Int(number >> 6)
        return word < present.count && present[word] & (1 << UInt64(number & 63)) != 0
    }

    /// Adds stream `number` named `name` unless it is in already.
    mutating func insert(number: UInt32, name: String) {
        let word = Int(number >> 6)
        let bit: UInt64 = 1 << UInt64(number & 63)
        if word >= present.count {
            present.append(contentsOf: repeatElement(0, count: max(word + 1 - present.count, present.count / 2)))
        }
        guard present[word] & bit == 0 else { return }
        present[word] |= bit
        names.append(name)
        numbers.append(number)
    }

    /// Hands over every stream (names and numbers in order of insertion) and
    /// starts empty again. The bitmap's storage is kept (only the bits that
    /// were set are cleared). The lists go whole, not copied: keeping their
    /// capacity would hold a second pair as large while the checkpoint that
    /// took them runs.
    mutating func takeAll() -> (names: [String], numbers: [UInt32]) {
        for number in numbers { present[Int(number >> 6)] &= ~(1 << UInt64(number & 63)) }
        defer {
            names = []
            numbers = []
        }
        return (names, numbers)
    }
}
