/// Checks one stream block (header already parsed by ``StreamBlock/parseHeader(_:)``):
/// payload CRC, decompression, and every entry's lengths, folding the
/// events' journal positions into a ``PositionRun``. Reuses one decompression
/// buffer, so checking costs no allocation per event or per block.
struct BlockChecker: ~Copyable {
    private var raw: UnsafeMutableRawBufferPointer = .allocate(byteCount: 1 << 20, alignment: 16)
    /// Raw (uncompressed) bytes of every block checked, for the compression ratio.
    private(set) var rawBytes: UInt64 = 0

    deinit { raw.deallocate() }

    /// What is wrong with the block, or nil; adds the positions of its events from
    /// the `skip`-th on to `run` (the run is only meaningful when nil is returned).
    /// `dictionary`: that of the segment the block lies in (nil for stream files).
    mutating func check(header: StreamBlock.Header, stored: UnsafeRawBufferPointer, skip: Int = 0,
                        dictionary: CompressionDictionary? = nil, run: inout PositionRun) -> String? {
        guard stored.count == header.storedLength else { return "block runs past the end of the file" }
        guard CRC32C.checksum(stored) == header.payloadCRC else { return "block payload checksum mismatch" }
        let payload: UnsafeRawBufferPointer
        if header.compressed {
            if raw.count < header.rawLength {
                raw.deallocate()
                raw = .allocate(byteCount: header.rawLength, alignment: 16)
            }
            if let failure = StreamBlock.decompress(stored, header: header, dictionary: dictionary, into: raw) { return "\(failure)" }
            payload = UnsafeRawBufferPointer(rebasing: raw[0..<header.rawLength])
        } else {
            payload = stored
        }
        rawBytes += UInt64(header.rawLength)
        var offset = 0
        var last: UInt64? = nil
        for i in 0..<header.count {
            guard offset + StreamBlock.entryHeaderSize <= payload.count else { return "block entry \(i) runs past the payload" }
            let length = Int(UInt32(littleEndian: payload.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
            let typeCount = Int(payload[offset + 37])
            let metadataCount = Int(UInt32(littleEndian: payload.loadUnaligned(fromByteOffset: offset + 40, as: UInt32.self)))
            let dataCount = Int(UInt32(littleEndian: payload.loadUnaligned(fromByteOffset: offset + 44, as: UInt32.self)))
            guard length == StreamBlock.entryHeaderSize + typeCount + metadataCount + dataCount, offset + length <= payload.count else {
                return "block entry \(i) has inconsistent lengths"
            }
            let position = UInt64(littleEndian: payload.loadUnaligned(fromByteOffset: offset + 4, as: UInt64.self))
            if i == 0, position != header.firstPosition {
                return "block header names journal position \(header.firstPosition) but its first event has \(position)"
            }
            if let last, position <= last { return "block entry \(i): journal position \(position) does not increase (after \(last))" }
            last = position
            if i >= skip { run.add(position) }
            offset += length
        }
        return offset == payload.count ? nil : "block payload has \(payload.count - offset) bytes after its last entry"
    }
}

/// The journal positions of a run of consecutive events (a block, a stream):
/// the first and last, and a digest of those before `limit` (the checkpoint:
/// the ones the global index must name).
struct PositionRun {
    let limit: UInt64
    var first: UInt64?
    var last: UInt64?
    var count = 0
    var covered = PositionDigest()

    init(limit: UInt64) { self.limit = limit }

    mutating func add(_ position: UInt64) {
        if first == nil { first = position }
        last = position
        count += 1
        if position < limit { covered.add(position) }
    }
}
