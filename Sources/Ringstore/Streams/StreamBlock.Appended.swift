extension StreamBlock {
    /// One block to append to a stream file: raw events joined from smaller
    /// blocks (compressed as it is written), or a block already encoded, copied
    /// byte for byte. Compaction copies an old file's full-size blocks; the
    /// segment mover copies large segment entries (``SplitStore``): recompressing
    /// either would give about the same block back at the cost of decompressing
    /// and compressing it.
    ///
    /// Why copying is safe: a block's bytes say nothing about where it lies, so
    /// the same block at another offset or in another file is the same versions,
    /// positions and events; the file's index is written from the offsets it
    /// gets when appended.
    enum Appended: StreamBlockSource {
        case built(StreamBlock.RawBlock)
        /// An encoded block, header and stored bytes, both checksums checked by
        /// whoever made it one of these.
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

        func encode(compress: Bool, acceleration: Int32, dictionary: CompressionDictionary?, into output: inout [UInt8]) {
            switch self {
            case .built(let block): block.encode(compress: compress, acceleration: acceleration, dictionary: dictionary, into: &output)
            case .copied(let bytes, _, _): output += bytes
            }
        }
    }
}
