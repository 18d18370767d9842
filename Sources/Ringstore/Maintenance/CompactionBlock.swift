/// One block of a compacted stream file: raw events joined from smaller
/// blocks (compressed as it is written), or a block of the old store copied
/// byte for byte — a full-size block kept whole, whose recompression would
/// give the same block back at the cost of decompressing and compressing it
/// (see ``CompactionWriter``).
enum CompactionBlock: StreamBlockSource {
    case built(StreamBlock.RawBlock)
    /// An old block, header and stored bytes, both checksums checked; its
    /// versions, positions and events are the old ones, so only its offset changes.
    case copied(bytes: [UInt8], firstVersion: UInt64, count: Int)

    var firstVersion: UInt64 {
        switch self {
        case .built(let block): block.firstVersion
        case .copied(_, let firstVersion, _): firstVersion
        }
    }

    var count: Int {
        switch self {
        case .built(let block): block.count
        case .copied(_, _, let count): count
        }
    }

    func encode(compress: Bool, acceleration: Int32, into output: inout [UInt8]) {
        switch self {
        case .built(let block): block.encode(compress: compress, acceleration: acceleration, into: &output)
        case .copied(let bytes, _, _): output += bytes
        }
    }
}
