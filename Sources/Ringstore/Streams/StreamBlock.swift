import CLZ4
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The codec for one stream-file block: a run of consecutive versions of one
/// stream, LZ4-compressed when that pays, with its own checksum.
///
/// Block layout (little-endian):
///
///     offset size  field
///      0     4     magic "RSB1"
///      4     4     flags (1: stored bytes are LZ4-compressed; 2: against a
///                  ``CompressionDictionary``: in a split segment, the segment's;
///                  in a stream file, the store's ``StreamFileDictionary``)
///      8     8     first version
///     16     8     journal position of the first event (tells a block the
///                  journal can still rebuild from one it cannot)
///     24     4     event count
///     28     4     raw (uncompressed) length
///     32     4     stored length
///     36     4     CRC32C of bytes [0, 36): the header alone
///     40     4     CRC32C of the stored bytes
///     44     4     the dictionary's ``CompressionDictionary/id`` (flag 2), else 0;
///                  0 with flag 2 in segments written before it was recorded
///     48     …     stored bytes
///
/// Raw payload: the events back to back, each
/// `[entry length u32][position u64][id 16][timestamp i64][flags u8 (1: JSON)]
/// [type length u8][reserved u16][metadata length u32][data length u32][type][metadata][data]`;
/// versions are implied (first version + index).
///
/// Decoding never trusts a length from disk: every size is checked against the
/// buffer it claims to describe and against ``maxRawLength`` before anything is
/// allocated, so damaged or hostile bytes make it throw, never trap.
enum StreamBlock {
    static let headerSize = 48
    static let magic: UInt32 = 0x3142_5352  // "RSB1"
    static let flagCompressed: UInt32 = 1
    static let flagDictionary: UInt32 = 2
    static let entryHeaderSize = 48
    /// A block never holds more raw bytes than this (appends are split).
    static let maxRawLength = 1 << 20
    /// Largest raw length a decoder accepts (an event may exceed `maxRawLength` alone).
    static let decodeLimit = 64 << 20

    /// The parsed fixed header of a block.
    struct Header: Equatable {
        var compressed: Bool
        /// Compressed against a dictionary (``CompressionDictionary``): its segment's, or the store's stream-file one.
        var dictionary = false
        var firstVersion: UInt64
        var firstPosition: UInt64
        var count: Int
        var rawLength: Int
        var storedLength: Int
        var payloadCRC: UInt32
        /// The dictionary's ``CompressionDictionary/id`` (0: not recorded).
        var dictionaryID: UInt32 = 0

        var totalLength: Int { StreamBlock.headerSize + storedLength }
    }

    enum DecodeError: Error, Equatable, CustomStringConvertible {
        case badMagic, badLengths, checksumMismatch, decompressionFailed, badEntry(Int)
        /// The block was compressed against a dictionary and none was given (its
        /// segment's or the store's stream-file dictionary is damaged or missing).
        case dictionaryMissing
        /// The block was compressed against another dictionary than the one given.
        case wrongDictionary

        var description: String {
            switch self {
            case .badMagic: "the block header's magic is wrong"
            case .badLengths: "the block's lengths do not add up"
            case .checksumMismatch: "the block's checksum does not match"
            case .decompressionFailed: "the block's payload does not decompress (LZ4)"
            case .badEntry(let index): "event \(index) of the block is damaged"
            case .dictionaryMissing:
                "the block was compressed against a dictionary (its split segment's, or the stream files' `streams/dictionary`) that is damaged or missing"
            case .wrongDictionary:
                "the block was compressed against another dictionary than the one it was read with (its dictionary number does not match)"
            }
        }
    }

    // MARK: - Encoding

    /// The raw (uncompressed) payload of one block being built: events are
    /// added straight from their bytes, so the splitter can transcode journal
    /// records without making an object per event.
    struct RawBlock {
        var raw: [UInt8] = []
        var firstVersion: UInt64 = 0
        var firstPosition: UInt64 = 0
        var count = 0

        /// Adds the next event (its version must follow the previous one).
        mutating func add(version: UInt64, position: UInt64, id: uuid_t, timestampNanoseconds: Int64, json: Bool,
                          type: UnsafeRawBufferPointer, metadata: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer) {
            if count == 0 {
                firstVersion = version
                firstPosition = position
            }
            count += 1
            let typeCount = min(type.count, 255)
            let length = StreamBlock.entryHeaderSize + typeCount + metadata.count + data.count
            // The entry header is built on the stack and appended whole: appending 48
            // zeros as a `repeatElement` and patching them cost ~250 instructions an event.
            withUnsafeTemporaryAllocation(byteCount: StreamBlock.entryHeaderSize, alignment: 8) { h in
                h.initializeMemory(as: UInt8.self, repeating: 0)
                h.storeBytes(of: UInt32(length).littleEndian, toByteOffset: 0, as: UInt32.self)
                h.storeBytes(of: position.littleEndian, toByteOffset: 4, as: UInt64.self)
                withUnsafeBytes(of: id) { h.baseAddress!.advanced(by: 12).copyMemory(from: $0.baseAddress!, byteCount: 16) }
                h.storeBytes(of: timestampNanoseconds.littleEndian, toByteOffset: 28, as: Int64.self)
                h.storeBytes(of: UInt8(json ? 1 : 0), toByteOffset: 36, as: UInt8.self)
                h.storeBytes(of: UInt8(typeCount), toByteOffset: 37, as: UInt8.self)
                h.storeBytes(of: UInt32(metadata.count).littleEndian, toByteOffset: 40, as: UInt32.self)
                h.storeBytes(of: UInt32(data.count).littleEndian, toByteOffset: 44, as: UInt32.self)
                raw.append(contentsOf: UnsafeRawBufferPointer(h))
            }
            // A journal record holds type, metadata and data back to back, in the
            // block's order: one copy then, not three.
            if typeCount == type.count, Self.adjacent(type, metadata), Self.adjacent(metadata, data) {
                raw.append(contentsOf: UnsafeRawBufferPointer(start: type.baseAddress, count: typeCount + metadata.count + data.count))
                return
            }
            raw.append(contentsOf: UnsafeRawBufferPointer(rebasing: type[..<typeCount]))
            raw.append(contentsOf: metadata)
            raw.append(contentsOf: data)
        }

        /// Whether `second` starts where `first` ends in memory.
        private static func adjacent(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer) -> Bool {
            guard let a = first.baseAddress, let b = second.baseAddress else { return false }
            return a + first.count == b
        }
    }

    /// Encodes `events` (consecutive versions) as one block appended to `output`.
    static func encode(_ events: ArraySlice<RecordedEvent>, compress: Bool, into output: inout [UInt8]) {
        // One block whatever its size: no limit to cut at.
        var builder = Builder(limit: .max)
        builder.current.raw.reserveCapacity(events.reduce(0) { $0 + entryHeaderSize + $1.type.utf8.count + $1.metadata.count + $1.data.count })
        for event in events { builder.add(event) }
        encode(builder.finish().first ?? RawBlock(), compress: compress, into: &output)
    }

    /// Encodes a built block (compressing it when that pays) and appends it to `output`.
    ///
    /// Header and stored bytes go straight into `output`'s tail: with one-event
    /// appends over many streams the splitter encodes about a block per event,
    /// and a temporary array each for the header and the compressed bytes was
    /// two allocations (and copies) per block.
    ///
    /// `acceleration`: LZ4's speed knob (1 = its default; see ``LZ4Compressor``).
    /// `dictionary`: a split segment's, for a block that goes into it, or the
    /// store's ``StreamFileDictionary`` (compaction's, or the mover's); used only for blocks under
    /// ``CompressionDictionary/entryLimit`` raw bytes, and its id goes into the header.
    static func encode(_ block: RawBlock, compress: Bool, acceleration: Int32 = 1, dictionary: CompressionDictionary? = nil,
                       into output: inout [UInt8]) {
        let raw = block.raw
        let start = output.count
        let body = start + headerSize
        var flags: UInt32 = 0
        var storedCount = raw.count
        // Appended from buffers (a memcpy), not from `repeatElement`, which goes byte by byte.
        appendZeros(headerSize, to: &output)
        // Compressed into scratch space (on the stack for small blocks), so that
        // only the bytes kept are copied into `output`: copying the raw bytes in
        // first, to compress over them, cost a copy of every block.
        let dictionary = raw.count < CompressionDictionary.entryLimit ? dictionary : nil
        let compressed = compress && raw.count >= 64 && withUnsafeTemporaryAllocation(
            byteCount: Int(LZ4_compressBound(Int32(raw.count))), alignment: 16) { scratch -> Bool in
            let size = raw.withUnsafeBytes { r in
                dictionary.map { $0.compress(r, into: scratch) } ?? LZ4Compressor.compress(r, into: scratch, acceleration: acceleration)
            }
            // Keep it only if it saves at least a tenth: decompressing costs reads time.
            guard size > 0, size < raw.count - raw.count / 10 else { return false }
            output.append(contentsOf: UnsafeRawBufferPointer(rebasing: scratch[..<size]))
            storedCount = size
            return true
        }
        if compressed { flags = dictionary == nil ? flagCompressed : flagCompressed | flagDictionary } else { output += raw }
        output.withUnsafeMutableBytes { o in
            // Safe: `o[start..<body]` is the headerSize bytes appended for the header,
            // `o[body..<(body + storedCount)]` the stored bytes after it.
            let h = UnsafeMutableRawBufferPointer(rebasing: o[start..<body])
            h.storeBytes(of: magic.littleEndian, toByteOffset: 0, as: UInt32.self)
            h.storeBytes(of: flags.littleEndian, toByteOffset: 4, as: UInt32.self)
            h.storeBytes(of: block.firstVersion.littleEndian, toByteOffset: 8, as: UInt64.self)
            h.storeBytes(of: block.firstPosition.littleEndian, toByteOffset: 16, as: UInt64.self)
            h.storeBytes(of: UInt32(block.count).littleEndian, toByteOffset: 24, as: UInt32.self)
            h.storeBytes(of: UInt32(raw.count).littleEndian, toByteOffset: 28, as: UInt32.self)
            h.storeBytes(of: UInt32(storedCount).littleEndian, toByteOffset: 32, as: UInt32.self)
            h.storeBytes(of: CRC32C.checksum(UnsafeRawBufferPointer(rebasing: h[0..<36])).littleEndian, toByteOffset: 36, as: UInt32.self)
            let stored = UnsafeRawBufferPointer(rebasing: o[body..<(body + storedCount)])
            h.storeBytes(of: CRC32C.checksum(stored).littleEndian, toByteOffset: 40, as: UInt32.self)
            h.storeBytes(of: (flags & flagDictionary != 0 ? dictionary?.id ?? 0 : 0).littleEndian, toByteOffset: 44, as: UInt32.self)
        }
    }

    private static let zeros = [UInt8](repeating: 0, count: 256)

    /// Appends `count` zero bytes to `output`.
    private static func appendZeros(_ count: Int, to output: inout [UInt8]) {
        var left = count
        while left > 0 {
            let n = min(left, zeros.count)
            zeros.withUnsafeBufferPointer { output.append(contentsOf: UnsafeBufferPointer(rebasing: $0[..<n])) }
            left -= n
        }
    }

    // MARK: - Decoding

    /// Parses and checks a block header (not the stored bytes).
    static func parseHeader(_ bytes: some Collection<UInt8>) -> Result<Header, DecodeError> {
        guard bytes.count >= headerSize else { return .failure(.badLengths) }
        // In place when the bytes are contiguous (an array slice: every read path); a
        // copy cost an allocation per block, a few per cent of a warm `$all` event.
        if let parsed = bytes.withContiguousStorageIfAvailable({ parseHeader(UnsafeRawBufferPointer($0)) }) { return parsed }
        let b = Array(bytes.prefix(headerSize))
        return b.withUnsafeBytes { parseHeader($0) }
    }

    /// ``parseHeader(_:)-(Collection<UInt8>)`` over raw bytes, without copying them
    /// (the maintenance tools parse millions of headers in place).
    static func parseHeader(_ h: UnsafeRawBufferPointer) -> Result<Header, DecodeError> {
        guard h.count >= headerSize else { return .failure(.badLengths) }
        do {
            // Safe: `bytes.count >= headerSize` (checked above) covers every field read here.
            guard UInt32(littleEndian: h.loadUnaligned(fromByteOffset: 0, as: UInt32.self)) == magic else { return .failure(.badMagic) }
            guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: h[0..<36])) == UInt32(littleEndian: h.loadUnaligned(fromByteOffset: 36, as: UInt32.self)) else {
                return .failure(.checksumMismatch)
            }
            let flags = UInt32(littleEndian: h.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
            let header = Header(
                compressed: flags & flagCompressed != 0,
                dictionary: flags & flagDictionary != 0,
                firstVersion: UInt64(littleEndian: h.loadUnaligned(fromByteOffset: 8, as: UInt64.self)),
                firstPosition: UInt64(littleEndian: h.loadUnaligned(fromByteOffset: 16, as: UInt64.self)),
                count: Int(UInt32(littleEndian: h.loadUnaligned(fromByteOffset: 24, as: UInt32.self))),
                rawLength: Int(UInt32(littleEndian: h.loadUnaligned(fromByteOffset: 28, as: UInt32.self))),
                storedLength: Int(UInt32(littleEndian: h.loadUnaligned(fromByteOffset: 32, as: UInt32.self))),
                payloadCRC: UInt32(littleEndian: h.loadUnaligned(fromByteOffset: 40, as: UInt32.self)),
                dictionaryID: UInt32(littleEndian: h.loadUnaligned(fromByteOffset: 44, as: UInt32.self)))
            guard flags & ~(flagCompressed | flagDictionary) == 0, header.compressed || !header.dictionary, header.count > 0, header.rawLength <= decodeLimit,
                  header.rawLength >= header.count * entryHeaderSize,
                  header.compressed || header.storedLength == header.rawLength,
                  header.storedLength <= Int(LZ4_compressBound(Int32(min(header.rawLength, decodeLimit)))) + 16,
                  // LZ4 expands at most 255-fold: a larger claim is damage, and believing it
                  // would allocate up to decodeLimit for a few stored bytes.
                  !header.compressed || header.rawLength <= header.storedLength * 256 + 64,
                  // Every event's version (first + index) must exist.
                  header.firstVersion <= UInt64.max - UInt64(header.count)
            else { return .failure(.badLengths) }
            return .success(header)
        }
    }

    /// Decodes a whole block (header and stored bytes) into its events, for `stream`.
    /// `dictionary`: the dictionary of the segment the block was read from, if any.
    static func decode(_ block: [UInt8], stream: String, dictionary: CompressionDictionary? = nil) -> Result<[RecordedEvent], DecodeError> {
        block.withUnsafeBytes { checkedPayload($0, dictionary: dictionary) }
            .flatMap { parseEntries($0.raw, header: $0.header, stream: stream) }
    }

    /// A whole block's header and raw payload: the header parsed, the lengths
    /// and the payload checksum checked, the stored bytes decompressed (against
    /// `dictionary`, that of the segment the block was read from, when the block says so).
    /// `prefix`: how many raw bytes to decompress, given the header (fewer than
    /// the raw length: only that many come back; the checksum is checked whole either way).
    static func checkedPayload(_ block: UnsafeRawBufferPointer, dictionary: CompressionDictionary?,
                               prefix: (Header) -> Int = { _ in .max })
        -> Result<(header: Header, raw: [UInt8]), DecodeError> {
        let header: Header
        switch checkedHeader(block) {
        case .success(let h): header = h
        case .failure(let e): return .failure(e)
        }
        let stored = UnsafeRawBufferPointer(rebasing: block[headerSize...])
        guard header.compressed else { return .success((header, Array(stored))) }
        let wanted = max(prefix(header), 1)
        if wanted < header.rawLength {
            // Only the first `wanted` raw bytes: LZ4 stops there (the checksum above covered all stored bytes).
            if let failure = dictionaryFailure(header, dictionary) { return .failure(failure) }
            var decodedCount: Int32 = -1
            let raw = [UInt8](unsafeUninitializedCapacity: wanted) { buffer, initialized in
                decodedCount = decompressPrefix(stored, header: header, dictionary: dictionary, count: wanted,
                                                into: UnsafeMutableRawBufferPointer(buffer))
                initialized = decodedCount > 0 ? Int(decodedCount) : 0
            }
            return decodedCount == Int32(wanted) ? .success((header, raw)) : .failure(.decompressionFailed)
        }
        var failure: DecodeError? = nil
        // Uninitialised: a short result is refused, so no unwritten byte is kept.
        let raw = [UInt8](unsafeUninitializedCapacity: header.rawLength) { buffer, initialized in
            failure = decompress(stored, header: header, dictionary: dictionary, into: UnsafeMutableRawBufferPointer(buffer))
            initialized = failure == nil ? header.rawLength : 0
        }
        return failure.map { .failure($0) } ?? .success((header, raw))
    }

    /// A block's header, once it and the stored bytes after it (the rest of
    /// `block`, which must be exactly the block) have been checked against
    /// their checksums.
    /// `parsed`: the header as ``parseHeader(_:)`` already returned it for these bytes (it is not parsed again).
    static func checkedHeader(_ block: UnsafeRawBufferPointer, parsed: Header? = nil) -> Result<Header, DecodeError> {
        let header: Header
        switch parsed.map({ .success($0) }) ?? parseHeader(block) {
        case .success(let h): header = h
        case .failure(let e): return .failure(e)
        }
        guard block.count == header.totalLength else { return .failure(.badLengths) }
        guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: block[headerSize...])) == header.payloadCRC else {
            return .failure(.checksumMismatch)
        }
        return .success(header)
    }

    /// Decompresses a compressed block's stored bytes into `destination` (at
    /// least `header.rawLength` bytes): nil when exactly `rawLength` bytes came
    /// out, else what was wrong (`.dictionaryMissing` for a block compressed
    /// against a segment's dictionary when `dictionary` is nil).
    static func decompress(_ stored: UnsafeRawBufferPointer, header: Header, dictionary: CompressionDictionary?,
                           into destination: UnsafeMutableRawBufferPointer) -> DecodeError? {
        guard destination.count >= header.rawLength, let source = stored.baseAddress, let target = destination.baseAddress else {
            return .decompressionFailed
        }
        let size: Int32
        if header.dictionary {
            guard let dictionary else { return .dictionaryMissing }
            if let failure = dictionaryFailure(header, dictionary) { return failure }
            size = dictionary.decompress(stored, into: UnsafeMutableRawBufferPointer(start: target, count: header.rawLength))
        } else {
            size = LZ4_decompress_safe(source.assumingMemoryBound(to: CChar.self), target.assumingMemoryBound(to: CChar.self),
                                       Int32(stored.count), Int32(header.rawLength))
        }
        return size == Int32(header.rawLength) ? nil : .decompressionFailed
    }

    /// Why a block that needs a dictionary cannot be decoded with `dictionary`
    /// (none given, or another than the one it was compressed against); nil if it can.
    static func dictionaryFailure(_ header: Header, _ dictionary: CompressionDictionary?) -> DecodeError? {
        guard header.dictionary else { return nil }
        guard let dictionary else { return .dictionaryMissing }
        return header.dictionaryID == 0 || header.dictionaryID == dictionary.id ? nil : .wrongDictionary
    }

    /// Decompresses the first `count` raw bytes (fewer than `header.rawLength`)
    /// of a compressed block into `destination`; returns how many came out
    /// (negative: the stored bytes are malformed).
    static func decompressPrefix(_ stored: UnsafeRawBufferPointer, header: Header, dictionary: CompressionDictionary?, count: Int,
                                 into destination: UnsafeMutableRawBufferPointer) -> Int32 {
        guard count <= destination.count, let source = stored.baseAddress, let target = destination.baseAddress else { return -1 }
        if header.dictionary {
            guard let dictionary, dictionaryFailure(header, dictionary) == nil else { return -1 }
            return dictionary.decompressPrefix(stored, count: count, into: destination)
        }
        return LZ4_decompress_safe_partial(source.assumingMemoryBound(to: CChar.self), target.assumingMemoryBound(to: CChar.self),
                                           Int32(stored.count), Int32(count), Int32(count))
    }

    /// The length of the entry at `offset` of a raw block payload, once its
    /// header fits, its parts add up to it and it ends within the payload; nil
    /// if any of that fails (the caller names the entry as bad).
    static func checkedEntryLength(_ r: UnsafeRawBufferPointer, at offset: Int) -> Int? {
        guard let length = declaredEntryLength(r, at: offset), offset + length <= r.count else { return nil }
        return length
    }

    /// The length the entry header at `offset` declares, once the header fits
    /// within `r` and its parts add up to it (whether the entry ends within `r` is not checked).
    static func declaredEntryLength(_ r: UnsafeRawBufferPointer, at offset: Int) -> Int? {
        guard offset + entryHeaderSize <= r.count else { return nil }
        // Safe: `offset + entryHeaderSize <= r.count` (checked just above) covers the entry header.
        let length = Int(UInt32(littleEndian: r.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
        let typeCount = Int(r[offset + 37])
        let metadataCount = Int(UInt32(littleEndian: r.loadUnaligned(fromByteOffset: offset + 40, as: UInt32.self)))
        let dataCount = Int(UInt32(littleEndian: r.loadUnaligned(fromByteOffset: offset + 44, as: UInt32.self)))
        return length == entryHeaderSize + typeCount + metadataCount + dataCount ? length : nil
    }

    private static func parseEntries(_ raw: [UInt8], header: Header, stream: String) -> Result<[RecordedEvent], DecodeError> {
        raw.withUnsafeBytes { r in
            var events: [RecordedEvent] = []
            events.reserveCapacity(header.count)
            var types = EventTypeCache()
            var offset = 0
            for i in 0..<header.count {
                guard let length = checkedEntryLength(r, at: offset) else { return .failure(.badEntry(i)) }
                // Safe: `checkedEntryLength` found the whole entry within `r`.
                let typeCount = Int(r[offset + 37])
                let metadataCount = Int(UInt32(littleEndian: r.loadUnaligned(fromByteOffset: offset + 40, as: UInt32.self)))
                let dataCount = Int(UInt32(littleEndian: r.loadUnaligned(fromByteOffset: offset + 44, as: UInt32.self)))
                var cursor = offset + entryHeaderSize
                func take(_ count: Int) -> UnsafeRawBufferPointer {
                    defer { cursor += count }
                    return UnsafeRawBufferPointer(rebasing: r[cursor..<(cursor + count)])
                }
                let type = types.type(of: take(typeCount))
                let metadata = metadataCount == 0 ? [] : [UInt8](take(metadataCount))
                let data = dataCount == 0 ? [] : [UInt8](take(dataCount))
                events.append(RecordedEvent(
                    stream: stream, version: header.firstVersion + UInt64(i),
                    position: UInt64(littleEndian: r.loadUnaligned(fromByteOffset: offset + 4, as: UInt64.self)),
                    id: UUID.stored(in: r, at: offset + 12), type: type, data: data, metadata: metadata,
                    contentType: r[offset + 36] & 1 != 0 ? .json : .binary,
                    timestampNanoseconds: Int64(littleEndian: r.loadUnaligned(fromByteOffset: offset + 28, as: Int64.self))))
                offset += length
            }
            return offset == r.count ? .success(events) : .failure(.badEntry(header.count))
        }
    }
}
