/// Something that becomes one encoded stream-file block: a built ``StreamBlock/RawBlock``
/// (compressed now), or a block already encoded that is taken as it is
/// (``StreamBlock/Appended``). ``StreamFile/append(sources:compress:acceleration:)``
/// is generic over it so the engine's own appends stay specialised to raw blocks.
protocol StreamBlockSource {
    /// The block's first version (the next must follow the previous block's last).
    var firstVersion: UInt64 { get }
    /// Events in the block.
    var count: Int { get }
    /// Appends the encoded block (header and stored bytes) to `output`.
    func encode(compress: Bool, acceleration: Int32, into output: inout [UInt8])
}

extension StreamBlock.RawBlock: StreamBlockSource {
    func encode(compress: Bool, acceleration: Int32, into output: inout [UInt8]) {
        StreamBlock.encode(self, compress: compress, acceleration: acceleration, into: &output)
    }
}
