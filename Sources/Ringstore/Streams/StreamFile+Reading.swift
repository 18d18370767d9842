import SystemPackage

/// Reading events by version, through the block list and the block cache.
extension StreamFile {
    /// Up to `maxCount` events from version `version` (inclusive), forwards or backwards.
    /// `version` is clamped into the stored range. `offer`: what the blocks
    /// decoded are offered to the block cache (see ``BlockOffer``).
    func read(from version: UInt64, direction: ReadDirection, maxCount: Int, offer: BlockOffer = .decoded) throws -> [RecordedEvent] {
        let blocks = try blockList()
        guard maxCount > 0, let first = blocks.first?.firstVersion, nextVersion > first else { return [] }
        var wanted = min(max(version, first), nextVersion - 1)
        if direction == .forwards && version >= nextVersion { return [] }
        var result: [RecordedEvent] = []
        var blockIndex = blockContaining(wanted, in: blocks)
        while result.count < maxCount, blockIndex >= 0, blockIndex < blocks.count {
            let (events, decoded) = try eventsOfBlock(blockIndex, in: blocks)
            let base = blocks[blockIndex].firstVersion
            let from = Int(wanted - base)
            let taking: Int
            switch direction {
            case .forwards:
                taking = min(events.count - from, maxCount - result.count)
                if result.isEmpty && from == 0 && events.count <= maxCount {
                    result = events  // the whole block: share its storage rather than copy every event
                } else {
                    result += events[from...].prefix(taking)
                }
            case .backwards:
                taking = min(from + 1, maxCount - result.count)
                result += events[...from].reversed().prefix(taking)
            }
            if decoded, let blockCache {
                blockCache.offer(offer, stream: streamName, firstVersion: base, events: events,
                                 stopsInside: direction == .forwards ? from + taking < events.count : from + 1 > taking)
            }
            switch direction {
            case .forwards:
                wanted = base + UInt64(events.count)
                blockIndex += 1
            case .backwards:
                if base == 0 { return result }
                wanted = base - 1
                blockIndex -= 1
            }
        }
        return result
    }

    /// Index of the block holding `version` (which must be stored).
    private func blockContaining(_ version: UInt64, in blocks: [(firstVersion: UInt64, offset: UInt64)]) -> Int {
        var low = 0
        var high = blocks.count
        while low < high {
            let middle = (low + high) / 2
            if blocks[middle].firstVersion > version { high = middle } else { low = middle + 1 }
        }
        return low - 1
    }

    /// The events of block `i`, and whether they were decoded now (the
    /// caller offers those to the block cache) rather than found cached.
    private func eventsOfBlock(_ i: Int, in blocks: [(firstVersion: UInt64, offset: UInt64)]) throws -> (events: [RecordedEvent], decoded: Bool) {
        let offset = blocks[i].offset
        if let cached = cachedBlock, cached.offset == offset { return (cached.events, false) }
        let firstVersion = blocks[i].firstVersion
        let expectedCount = (i + 1 < blocks.count ? blocks[i + 1].firstVersion : nextVersion) - firstVersion
        // The cache may also hold a split segment's block of the same stream starting at the
        // same version (the same events, cut differently): only a block of this one's length will do.
        if let shared = blockCache?.block(of: streamName, containing: firstVersion), shared.firstVersion == firstVersion,
           UInt64(shared.events.count) == expectedCount {
            return (shared.events, false)
        }
        // The block's length is known from where the next one starts: one read for
        // header and body. Should the header disagree, read it as the header says.
        let end = i + 1 < blocks.count ? blocks[i + 1].offset : dataEnd
        let events: [RecordedEvent]
        if let whole = try readWholeBlock(at: offset, length: end - offset) {
            events = whole
        } else {
            events = try readBlock(at: offset, header: try readBlockHeader(at: offset))
        }
        guard UInt64(events.count) == (i + 1 < blocks.count ? blocks[i + 1].firstVersion : nextVersion) - blocks[i].firstVersion else {
            throw damaged(at: offset, "block holds \(events.count) events, the index expects otherwise")
        }
        if blockCache == nil { cachedBlock = (offset, events) }
        return (events, true)
    }

    /// The block holding `version` checked and decompressed but not made into
    /// events (for `$all`, which keeps it in its own window, not the block
    /// cache), or nil if the file does not hold `version`. One `pread` for the
    /// block (two if its header disagrees with where the next block starts).
    func decodedBlock(containing version: UInt64, extent: StreamBlock.DecodeExtent = .whole) throws -> StreamBlock.Decoded? {
        let blocks = try blockList()
        guard let first = blocks.first?.firstVersion, version >= first, version < nextVersion else { return nil }
        let i = blockContaining(version, in: blocks)
        let offset = blocks[i].offset
        let expectedCount = (i + 1 < blocks.count ? blocks[i + 1].firstVersion : nextVersion) - blocks[i].firstVersion
        let end = i + 1 < blocks.count ? blocks[i + 1].offset : dataEnd
        var bytes: [UInt8] = []
        if end > offset, end - offset >= UInt64(StreamBlock.headerSize),
           end - offset <= UInt64(StreamBlock.headerSize + StreamBlock.maxRawLength + 1024) {
            bytes = try readBytes(Int(end - offset), at: offset)
            if bytes.count != Int(end - offset) { bytes = [] }
        }
        let header = bytes.isEmpty ? nil : try? StreamBlock.parseHeader(bytes[..<StreamBlock.headerSize]).get()
        if header.map({ UInt64($0.totalLength) != end - offset }) ?? true {
            let header = try readBlockHeader(at: offset)
            bytes = try readBytes(header.totalLength, at: offset)
            guard bytes.count == header.totalLength else { throw damaged(at: offset, "block runs past the end of the file") }
        }
        let decoded: StreamBlock.Decoded
        switch StreamBlock.decoded(from: bytes[...], dictionary: dictionary, extent: extent) {
        case .success(let d): decoded = d
        case .failure(let error): throw damaged(at: offset, "\(error)")
        }
        // A part (``StreamBlock/DecodeExtent``) holds fewer events, the one asked for among them.
        let counted = UInt64(decoded.count) == expectedCount || UInt64(decoded.count) < expectedCount && decoded.firstVersion + UInt64(decoded.count) > version
        guard counted, decoded.firstVersion == blocks[i].firstVersion else {
            throw damaged(at: offset, "block holds \(decoded.count) events, the index expects otherwise")
        }
        return decoded
    }

    func readBlockHeader(at offset: UInt64) throws -> StreamBlock.Header {
        guard let header = try readBlockHeaderOrNil(at: offset) else { throw damaged(at: offset, "bad block header") }
        return header
    }

    /// Reads `bytes.count` bytes at `offset` (fewer at the end of the file), from
    /// ``readAhead`` when it holds them.
    func read(into bytes: inout [UInt8], at offset: UInt64) throws -> Int {
        try bytes.withUnsafeMutableBytes { try read(into: $0, at: offset) }
    }

    /// ``read(into:at:)`` into memory of the caller's.
    func read(into target: UnsafeMutableRawBufferPointer, at offset: UInt64) throws -> Int {
        if let ahead = readAhead, offset >= ahead.offset, offset - ahead.offset <= UInt64(ahead.bytes.count) {
            let start = Int(offset - ahead.offset)
            let count = min(target.count, ahead.bytes.count - start)
            ahead.bytes.withUnsafeBytes { source in
                UnsafeMutableRawBufferPointer(rebasing: target[..<count]).copyMemory(from: UnsafeRawBufferPointer(rebasing: source[start..<(start + count)]))
            }
            return count
        }
        return try data.read(into: target, at: offset)
    }

    /// The `count` bytes at `offset`, fewer at the end of the file. Not zeroed
    /// before the read (a block's read did that for every block `$all` or a
    /// stream read decoded: a tenth of a pass over a compacted store); only the
    /// bytes read are in the result.
    func readBytes(_ count: Int, at offset: UInt64) throws -> [UInt8] {
        try [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            initialized = try read(into: UnsafeMutableRawBufferPointer(buffer), at: offset)
        }
    }

    func readBlockHeaderOrNil(at offset: UInt64) throws -> StreamBlock.Header? {
        var bytes = [UInt8](repeating: 0, count: StreamBlock.headerSize)
        guard try read(into: &bytes, at: offset) == bytes.count else { return nil }
        return try? StreamBlock.parseHeader(bytes).get()
    }

    /// The block at `offset` read with one `pread` of `length` bytes, or nil if
    /// its header does not say it is that long (the caller reads it the slow way).
    private func readWholeBlock(at offset: UInt64, length: UInt64) throws -> [RecordedEvent]? {
        guard length >= UInt64(StreamBlock.headerSize), length <= UInt64(StreamBlock.headerSize + StreamBlock.maxRawLength + 1024) else { return nil }
        let bytes = try readBytes(Int(length), at: offset)
        guard bytes.count == Int(length),
              case .success(let header) = StreamBlock.parseHeader(bytes[..<StreamBlock.headerSize]),
              UInt64(header.totalLength) == length else { return nil }
        return try decode(bytes, at: offset)
    }

    func readBlock(at offset: UInt64, header: StreamBlock.Header) throws -> [RecordedEvent] {
        let bytes = try readBytes(header.totalLength, at: offset)
        guard bytes.count == header.totalLength else {
            throw damaged(at: offset, "block runs past the end of the file")
        }
        return try decode(bytes, at: offset)
    }

    private func decode(_ block: [UInt8], at offset: UInt64) throws -> [RecordedEvent] {
        switch StreamBlock.decode(block, stream: streamName, dictionary: dictionary) {
        case .success(let events): return events
        case .failure(let error): throw damaged(at: offset, "\(error)")
        }
    }

    func damaged(at offset: UInt64, _ why: String) -> RingstoreError {
        RingstoreError(.corruptData, "stream file \(path) is damaged at offset \(offset): \(why)",
                       stream: streamName, path: pathString, offset: offset)
    }
}
