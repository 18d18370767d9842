/// The lowest ring position a pass over a list of pending streams still has to
/// read from a given index of the list on: the least of the remaining streams'
/// first positions, and at most `end` (the scan cursor, above every pending
/// record).
///
/// Why: `Splitter.writePending` lets go of the ring pages below it as it goes
/// (see `Splitter.releaseScannedPages`). Asked after every segment write, a
/// minimum over the rest of the list each time would cost the list's length
/// per write (thousands of streams, a few dozen writes per checkpoint); the
/// minima of each chunk of ``chunk`` streams and of everything after it are
/// computed once, and a query scans at most the rest of one chunk.
///
/// Memory: 8 bytes per ``chunk`` streams (3 KiB at 100,000 streams).
struct RingReadFloors {
    /// Streams per chunk.
    static let chunk = 256

    /// `floors[c]`: the least first position of the streams from chunk `c` on,
    /// at most `end`; the last element (one past the last chunk) is `end`.
    private let floors: [UInt64]
    private let count: Int

    /// `firstPositions[i]`: the ring position of stream `i`'s first pending
    /// record (`.max` for a stream with none).
    init(firstPositions: some Collection<UInt64>, end: UInt64) {
        count = firstPositions.count
        let chunks = (count + Self.chunk - 1) / Self.chunk
        var floors = [UInt64](repeating: end, count: chunks + 1)
        for (i, position) in firstPositions.enumerated() where position < floors[i / Self.chunk] {
            floors[i / Self.chunk] = position
        }
        var c = chunks - 1
        while c >= 0 {
            floors[c] = min(floors[c], floors[c + 1])
            c -= 1
        }
        self.floors = floors
    }

    /// The least first position of the streams from `index` on (at most
    /// `end`); `firstPosition(i)` gives stream `i`'s, as at `init`.
    func floor(from index: Int, firstPosition: (Int) -> UInt64) -> UInt64 {
        guard index < count else { return floors[floors.count - 1] }
        let c = index / Self.chunk
        var floor = floors[c + 1]
        for i in index..<min(count, (c + 1) * Self.chunk) { floor = min(floor, firstPosition(i)) }
        return floor
    }
}
