/// The lowest first ring position among a checkpoint's list of pending
/// streams from any index on: how far the checkpoint's writing, going down the
/// list, may release the ring's pages (``SplitterMappedPages``).
///
/// The list is in the order streams first got records, so mostly by first
/// position, but not wholly (a removal moves the last stream into the gap):
/// hence the minimum, kept per chunk of 64 streams from each chunk to the end
/// (a 64th of the list's length in memory), the rest looked at directly.
struct LowestPendingPosition {
    private let list: [PendingStream]
    /// `chunkMinimums[c]`: the lowest first position of chunks `c` and after (`.max`: none).
    private let chunkMinimums: [UInt64]
    private static let chunk = 64

    init(_ list: [PendingStream]) {
        self.list = list
        let chunks = (list.count + Self.chunk - 1) / Self.chunk
        var minimums = [UInt64](repeating: .max, count: chunks + 1)
        for c in stride(from: chunks - 1, through: 0, by: -1) {
            minimums[c] = min(minimums[c + 1], Self.lowest(list[(c * Self.chunk)..<min(list.count, (c + 1) * Self.chunk)]))
        }
        chunkMinimums = minimums
    }

    /// The lowest first position of the streams at `index` and after (`.max`: none left).
    func from(_ index: Int) -> UInt64 {
        guard index < list.count else { return .max }
        let c = index / Self.chunk
        return min(chunkMinimums[c + 1], Self.lowest(list[index..<min(list.count, (c + 1) * Self.chunk)]))
    }

    private static func lowest(_ streams: ArraySlice<PendingStream>) -> UInt64 {
        var lowest = UInt64.max
        for stream in streams where !stream.positions.isEmpty { lowest = min(lowest, stream.positions[0]) }
        return lowest
    }
}
