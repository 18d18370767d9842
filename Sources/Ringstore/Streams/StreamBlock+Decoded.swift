#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A block checked and decompressed, its entries located but not yet turned
/// into ``RecordedEvent``s.
///
/// Why: `$all` over many interleaved streams needs one or a few events of a
/// block at a time and comes back for the rest later, so it keeps blocks
/// between its batches (``AllReadWindow``). Kept as raw bytes plus one offset
/// per entry they cost about what they hold on disk uncompressed, half or less
/// of the decoded events, and an event is made only when it is handed out, once.
extension StreamBlock {
    struct Decoded: Sendable {
        /// The raw payload (entries back to back), then where each entry
        /// starts in it and where the last ends (`count + 1` little-endian
        /// `UInt32`s): one allocation per decoded block, not two (with 100,000
        /// streams `$all` decodes a block for about every second event).
        private let bytes: [UInt8]
        /// The raw payload's length: where the offsets start in `bytes`.
        private let rawCount: Int
        let count: Int
        let firstVersion: UInt64
        /// Bytes held: what a budget of decoded blocks charges for it.
        var cost: Int { bytes.count + 64 }

        /// `bytes` must hold `rawCount` raw bytes and then `count + 1` offsets.
        private init(bytes: [UInt8], rawCount: Int, count: Int, firstVersion: UInt64) {
            self.bytes = bytes
            self.rawCount = rawCount
            self.count = count
            self.firstVersion = firstVersion
        }

        /// The raw payload (a copy: tests).
        var raw: [UInt8] { Array(bytes[..<rawCount]) }
        /// Where each entry starts in ``raw``, then the end (a copy: tests).
        var offsets: [UInt32] { bytes.withUnsafeBytes { b in (0...count).map { Self.offset($0, in: b, rawCount: rawCount) } } }

        @inline(__always)
        private static func offset(_ index: Int, in b: UnsafeRawBufferPointer, rawCount: Int) -> UInt32 {
            UInt32(littleEndian: b.loadUnaligned(fromByteOffset: rawCount + 4 * index, as: UInt32.self))
        }

        /// Builds a block in one buffer of `rawCount` raw bytes and room for
        /// `maxCount + 1` offsets: `fill` writes the raw bytes into the start
        /// of the buffer it is given, locates their entries
        /// (``locateEntries(_:rawCount:count:partial:)``) and returns how many
        /// there are, or an error.
        static func building(rawCount: Int, maxCount: Int, firstVersion: UInt64,
                             _ fill: (UnsafeMutableRawBufferPointer) -> Result<Int, DecodeError>) -> Result<Decoded, DecodeError> {
            var outcome: Result<Int, DecodeError> = .failure(.decompressionFailed)
            let bytes = [UInt8](unsafeUninitializedCapacity: rawCount + 4 * (maxCount + 1)) { buffer, initialized in
                outcome = fill(UnsafeMutableRawBufferPointer(buffer))
                initialized = (try? outcome.get()).map { rawCount + 4 * ($0 + 1) } ?? 0
            }
            return outcome.map { Decoded(bytes: bytes, rawCount: rawCount, count: $0, firstVersion: firstVersion) }
        }

        /// Locates the entries of the `rawCount` raw bytes at the start of
        /// `buffer` and writes their offsets, then the end, after them: how
        /// many entries (at most `count`; all of them unless `partial`, where
        /// an entry cut by the end of the part ends the list). Every entry must
        /// describe exactly its own bytes, and (`partial` aside) they must fill
        /// the payload.
        static func locateEntries(_ buffer: UnsafeMutableRawBufferPointer, rawCount: Int, count: Int,
                                  partial: Bool) -> Result<Int, DecodeError> {
            precondition(buffer.count >= rawCount + 4 * (count + 1))
            let r = UnsafeRawBufferPointer(rebasing: buffer[..<rawCount])
            var offset = 0
            var located = 0
            while located < count {
                guard let length = checkedEntryLength(r, at: offset) else {
                    if partial && entryRunsPastPart(r, at: offset) { break }
                    return .failure(.badEntry(located))
                }
                // Safe: the precondition leaves room for `count + 1` offsets after the raw bytes.
                buffer.storeBytes(of: UInt32(offset).littleEndian, toByteOffset: rawCount + 4 * located, as: UInt32.self)
                located += 1
                offset += length
            }
            buffer.storeBytes(of: UInt32(offset).littleEndian, toByteOffset: rawCount + 4 * located, as: UInt32.self)
            return partial || offset == rawCount ? .success(located) : .failure(.badEntry(count))
        }

        /// The event at `index` (0 ..< `count`) of the block, named `stream`.
        func event(at index: Int, stream: String) -> RecordedEvent {
            var types = EventTypeCache()
            return event(at: index, stream: stream, types: &types)
        }

        /// ``event(at:stream:)``, reusing the type string `types` made last when the bytes are the same.
        func event(at index: Int, stream: String, types: inout EventTypeCache) -> RecordedEvent {
            bytes.withUnsafeBytes { r in
                let offset = Int(Self.offset(index, in: r, rawCount: rawCount))
                // Safe: ``StreamBlock/decoded(from:)`` checked that every entry's fixed
                // header and its type, metadata and data lie within the raw bytes.
                let typeCount = Int(r[offset + 37])
                let metadataCount = Int(UInt32(littleEndian: r.loadUnaligned(fromByteOffset: offset + 40, as: UInt32.self)))
                let dataCount = Int(UInt32(littleEndian: r.loadUnaligned(fromByteOffset: offset + 44, as: UInt32.self)))
                let typeStart = offset + StreamBlock.entryHeaderSize
                let metadataStart = typeStart + typeCount
                let dataStart = metadataStart + metadataCount
                return RecordedEvent(
                    stream: stream, version: firstVersion + UInt64(index),
                    position: UInt64(littleEndian: r.loadUnaligned(fromByteOffset: offset + 4, as: UInt64.self)),
                    id: UUID.stored(in: r, at: offset + 12),
                    type: types.type(of: UnsafeRawBufferPointer(rebasing: r[typeStart..<metadataStart])),
                    data: dataCount == 0 ? [] : [UInt8](UnsafeRawBufferPointer(rebasing: r[dataStart..<(dataStart + dataCount)])),
                    metadata: metadataCount == 0 ? [] : [UInt8](UnsafeRawBufferPointer(rebasing: r[metadataStart..<dataStart])),
                    contentType: r[offset + 36] & 1 != 0 ? .json : .binary,
                    timestampNanoseconds: Int64(littleEndian: r.loadUnaligned(fromByteOffset: offset + 28, as: Int64.self)))
            }
        }

        /// The journal position of the event at `index` (0 ..< `count`).
        func position(at index: Int) -> UInt64 {
            bytes.withUnsafeBytes { r in
                UInt64(littleEndian: r.loadUnaligned(fromByteOffset: Int(Self.offset(index, in: r, rawCount: rawCount)) + 4, as: UInt64.self))
            }
        }

        /// The events at `range` (of indices 0 ..< `count`) as a block of their
        /// own, their bytes copied (the whole block: itself).
        func slice(_ range: Range<Int>) -> Decoded {
            guard range.count < count else { return self }
            return bytes.withUnsafeBytes { r in
                let start = Int(Self.offset(range.lowerBound, in: r, rawCount: rawCount))
                let end = Int(Self.offset(range.upperBound, in: r, rawCount: rawCount))
                let sliced = [UInt8](unsafeUninitializedCapacity: end - start + 4 * (range.count + 1)) { buffer, initialized in
                    let b = UnsafeMutableRawBufferPointer(buffer)
                    b.copyMemory(from: UnsafeRawBufferPointer(rebasing: r[start..<end]))
                    for i in 0...range.count {
                        let offset = Self.offset(range.lowerBound + i, in: r, rawCount: rawCount) - UInt32(start)
                        b.storeBytes(of: offset.littleEndian, toByteOffset: end - start + 4 * i, as: UInt32.self)
                    }
                    initialized = buffer.count
                }
                return Decoded(bytes: sliced, rawCount: end - start, count: range.count,
                               firstVersion: firstVersion + UInt64(range.lowerBound))
            }
        }

        /// Every event of the block.
        func events(stream: String) -> [RecordedEvent] {
            var events: [RecordedEvent] = []
            events.reserveCapacity(count)
            var types = EventTypeCache()
            for i in 0..<count { events.append(event(at: i, stream: stream, types: &types)) }
            return events
        }
    }

    /// How much of a block ``decoded(from:dictionary:extent:)`` decompresses.
    ///
    /// Why a part: `$all` over large blocks keeps only the events it reaches
    /// soon (``AllReadWindow``) and comes back for the rest later, so each
    /// visit needs the block from its start to a little past that part; LZ4
    /// decodes from the start and can stop there. The checksum still covers
    /// all the stored bytes.
    struct DecodeExtent: Sendable {
        /// The version the result must hold (it decodes the whole block when the part falls short of it).
        var version: UInt64
        /// About how many raw bytes to decode from the start, given the block's
        /// header (`.max`, or the raw length or more: all of it).
        var rawBytes: @Sendable (Header) -> Int

        static var whole: DecodeExtent { DecodeExtent(version: 0) { _ in .max } }
    }

    /// Checks a block (header and stored bytes: both checksums, the lengths),
    /// decompresses it (or the part `extent` asks for) and locates its entries,
    /// each of which must describe exactly its own bytes and all of which must
    /// fill the payload (a part: all entries that lie wholly inside it).
    /// `dictionary`: the dictionary of the segment the block was read from, if any.
    /// `parsedHeader`: the block's header as ``parseHeader(_:)`` returned it for
    /// these very bytes (a segment's read-ahead parses every entry's header
    /// to find the entry; its checksum is then not checked twice).
    static func decoded(from block: ArraySlice<UInt8>, parsedHeader: Header? = nil, dictionary: CompressionDictionary? = nil,
                        extent: DecodeExtent = .whole) -> Result<Decoded, DecodeError> {
        // nil: a part fell short of the version asked for.
        let result: Result<Decoded, DecodeError>? = block.withUnsafeBytes { b in
            let header: Header
            switch checkedHeader(b, parsed: parsedHeader) {
            case .success(let h): header = h
            case .failure(let e): return .failure(e)
            }
            let stored = UnsafeRawBufferPointer(rebasing: b[headerSize...])
            // Only the first `rawCount` raw bytes of a part: LZ4 stops there (the checksum covered all stored bytes).
            let rawCount = header.compressed ? min(max(extent.rawBytes(header), 1), header.rawLength) : stored.count
            let partial = rawCount < header.rawLength
            if partial, let failure = dictionaryFailure(header, dictionary) { return .failure(failure) }
            let decoded = Decoded.building(rawCount: rawCount, maxCount: header.count, firstVersion: header.firstVersion) { buffer in
                // Uninitialised: a short result is refused, so no unwritten byte is kept.
                let raw = UnsafeMutableRawBufferPointer(rebasing: buffer[..<rawCount])
                if !header.compressed {
                    raw.copyMemory(from: stored)
                } else if partial {
                    guard decompressPrefix(stored, header: header, dictionary: dictionary, count: rawCount, into: raw) == Int32(rawCount) else {
                        return .failure(.decompressionFailed)
                    }
                } else if let failure = decompress(stored, header: header, dictionary: dictionary, into: raw) {
                    return .failure(failure)
                }
                // Raw payloads are below 4 GiB (decodeLimit), so UInt32 offsets suffice.
                return Decoded.locateEntries(buffer, rawCount: rawCount, count: header.count, partial: partial)
            }
            if partial, case .success(let part) = decoded, part.firstVersion + UInt64(part.count) <= extent.version { return nil }
            return decoded
        }
        return result ?? decoded(from: block, parsedHeader: parsedHeader, dictionary: dictionary)
    }

    /// Whether the entry at `offset` of a part of a raw payload is cut by the
    /// part's end rather than damaged: its header is cut, or its lengths agree
    /// and only its bytes run past the end.
    private static func entryRunsPastPart(_ r: UnsafeRawBufferPointer, at offset: Int) -> Bool {
        guard offset + entryHeaderSize <= r.count else { return true }
        return declaredEntryLength(r, at: offset).map { offset + $0 > r.count } ?? false
    }
}
