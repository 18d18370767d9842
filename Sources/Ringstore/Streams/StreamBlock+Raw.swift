/// Blocks back to their raw payload, so that the segment mover can join many
/// small blocks of one stream into a few large ones without decoding events.
///
/// The raw payload has the same layout in every block (entries back to back,
/// versions implied by the block's first version), so consecutive blocks' raw
/// payloads joined together are the raw payload of one block holding them all.
extension StreamBlock {
    /// The raw payload of an encoded block (`block` is the whole block: header
    /// and stored bytes), with its checksum checked and its entries' lengths
    /// walked, so a damaged block is refused here rather than copied on.
    /// `dictionary`: the dictionary of the segment the block was read from, if any.
    static func rawBlock(from block: [UInt8], dictionary: CompressionDictionary? = nil) -> Result<RawBlock, DecodeError> {
        let header: Header, raw: [UInt8]
        switch block.withUnsafeBytes({ checkedPayload($0, dictionary: dictionary) }) {
        case .success(let checked): (header, raw) = checked
        case .failure(let e): return .failure(e)
        }
        guard entryOffsets(raw, count: header.count) != nil else { return .failure(.badEntry(0)) }
        return .success(RawBlock(raw: raw, firstVersion: header.firstVersion, firstPosition: header.firstPosition, count: header.count))
    }

    /// The offset of each of `count` entries in `raw`, plus the end; nil unless
    /// the entries exactly fill it.
    static func entryOffsets(_ raw: [UInt8], count: Int) -> [Int]? {
        raw.withUnsafeBytes { r in
            var offsets: [Int] = []
            offsets.reserveCapacity(count + 1)
            var offset = 0
            for _ in 0..<count {
                guard offset + entryHeaderSize <= r.count else { return nil }
                let length = Int(LittleEndian.load(UInt32.self, from: r, at: offset))
                guard length >= entryHeaderSize, offset + length <= r.count else { return nil }
                offsets.append(offset)
                offset += length
            }
            offsets.append(offset)
            return offset == r.count ? offsets : nil
        }
    }
}

extension StreamBlock.RawBlock {
    /// The block without its events below `version` (all of them if it ends
    /// before `version`); nil if its entries cannot be walked.
    func dropping(below version: UInt64) -> StreamBlock.RawBlock? {
        guard count > 0, version > firstVersion else { return self }
        let drop = Int(min(UInt64(count), version - firstVersion))
        guard let offsets = StreamBlock.entryOffsets(raw, count: count) else { return nil }
        if drop == count { return StreamBlock.RawBlock() }
        let start = offsets[drop]
        let position = raw.withUnsafeBytes { LittleEndian.load(UInt64.self, from: $0, at: start + 4) }
        return StreamBlock.RawBlock(raw: Array(raw[start...]), firstVersion: firstVersion + UInt64(drop),
                                    firstPosition: position, count: count - drop)
    }

    /// Appends the events of `next`, which must continue this block's versions.
    mutating func append(_ next: StreamBlock.RawBlock) {
        guard next.count > 0 else { return }
        if count == 0 {
            self = next
            return
        }
        precondition(next.firstVersion == firstVersion + UInt64(count), "joined blocks must be consecutive")
        raw += next.raw
        count += next.count
    }
}
