/// Something that becomes one encoded stream-file block: a built ``StreamBlock/RawBlock``
/// (compressed now), or a block already encoded that is taken as it is
/// (``StreamBlock/Appended``). ``StreamFile/append(sources:compress:acceleration:dictionary:)``
/// is generic over it so the engine's own appends stay specialised to raw blocks.
protocol StreamBlockSource {
    /// The block's first version (the next must follow the previous block's last).
    var firstVersion: UInt64 { get }
    /// Events in the block.
    var count: Int { get }
    /// Appends the encoded block (header and stored bytes) to `output`; a block
    /// built now is compressed against `dictionary` when one is given and it is small.
    func encode(compress: Bool, acceleration: Int32, dictionary: CompressionDictionary?, into output: inout [UInt8])
}

extension StreamBlock.RawBlock: StreamBlockSource {
    func encode(compress: Bool, acceleration: Int32, dictionary: CompressionDictionary?, into output: inout [UInt8]) {
        StreamBlock.encode(self, compress: compress, acceleration: acceleration, dictionary: dictionary, into: &output)
    }
}
