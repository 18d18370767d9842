/// The lowest first ring position among a checkpoint's list of pending
/// streams from any index on: how far the checkpoint's writing, going down the
/// list, may release the ring's pages (``SplitterMappedPages``).
///
/// The list is in the order streams first got records, so mostly by first
/// position, but not wholly (a removal moves the last stream into the gap):
/// hence the minimum, kept per chunk of 64 streams from each chunk to the end
/// (a 64th of the list's length in memory), the rest looked at directly.
///
/// It keeps each stream's first position (8 bytes a stream), not the list:
/// holding the list while the pass removes written streams from it made the
/// first removal copy all of it (48 bytes a stream).
struct LowestPendingPosition {
    /// Each stream's first position, in the list's order (`.max`: none).
    private let firsts: [UInt64]
    /// `chunkMinimums[c]`: the lowest first position of chunks `c` and after (`.max`: none).
    private let chunkMinimums: [UInt64]
    private static let chunk = 64

    init(_ list: [PendingStream]) {
        let firsts = list.map { $0.positions.first ?? .max }
        self.firsts = firsts
        let chunks = (firsts.count + Self.chunk - 1) / Self.chunk
        var minimums = [UInt64](repeating: .max, count: chunks + 1)
        for c in stride(from: chunks - 1, through: 0, by: -1) {
            minimums[c] = min(minimums[c + 1], firsts[(c * Self.chunk)..<min(firsts.count, (c + 1) * Self.chunk)].min() ?? .max)
        }
        chunkMinimums = minimums
    }

    /// The lowest first position of the streams at `index` and after (`.max`: none left).
    func from(_ index: Int) -> UInt64 {
        guard index < firsts.count else { return .max }
        let c = index / Self.chunk
        return min(chunkMinimums[c + 1], firsts[index..<min(firsts.count, (c + 1) * Self.chunk)].min() ?? .max)
    }
}
