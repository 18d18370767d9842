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
        /// The raw payload: entries back to back.
        let raw: [UInt8]
        /// Where each entry starts in `raw`, then the end.
        let offsets: [UInt32]
        let firstVersion: UInt64
        var count: Int { offsets.count - 1 }
        /// Bytes held: what a budget of decoded blocks charges for it.
        var cost: Int { raw.count + offsets.count * 4 + 64 }

        /// The event at `index` (0 ..< `count`) of the block, named `stream`.
        func event(at index: Int, stream: String) -> RecordedEvent {
            var types = EventTypeCache()
            return event(at: index, stream: stream, types: &types)
        }

        /// ``event(at:stream:)``, reusing the type string `types` made last when the bytes are the same.
        func event(at index: Int, stream: String, types: inout EventTypeCache) -> RecordedEvent {
            raw.withUnsafeBytes { r in
                let offset = Int(offsets[index])
                // Safe: ``StreamBlock/decoded(from:)`` checked that every entry's fixed
                // header and its type, metadata and data lie within `raw`.
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
            raw.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: Int(offsets[index]) + 4, as: UInt64.self)) }
        }

        /// The events at `range` (of indices 0 ..< `count`) as a block of their
        /// own, their bytes copied (the whole block: itself).
        func slice(_ range: Range<Int>) -> Decoded {
            guard range.count < count else { return self }
            let start = offsets[range.lowerBound]
            return Decoded(raw: Array(raw[Int(start)..<Int(offsets[range.upperBound])]),
                           offsets: offsets[range.lowerBound...range.upperBound].map { $0 - start },
                           firstVersion: firstVersion + UInt64(range.lowerBound))
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
    static func decoded(from block: ArraySlice<UInt8>, dictionary: SegmentDictionary? = nil,
                        extent: DecodeExtent = .whole) -> Result<Decoded, DecodeError> {
        let header: Header, raw: [UInt8]
        switch block.withUnsafeBytes({ checkedPayload($0, dictionary: dictionary, prefix: extent.rawBytes) }) {
        case .success(let checked): (header, raw) = checked
        case .failure(let e): return .failure(e)
        }
        let partial = raw.count < header.rawLength
        // Raw payloads are below 4 GiB (decodeLimit), so UInt32 offsets suffice.
        let offsets: Result<[UInt32], DecodeError> = raw.withUnsafeBytes { r in
            var offsets: [UInt32] = []
            offsets.reserveCapacity(header.count + 1)
            var offset = 0
            for i in 0..<header.count {
                guard let length = checkedEntryLength(r, at: offset) else {
                    if partial && entryRunsPastPart(r, at: offset) { break }
                    return .failure(.badEntry(i))
                }
                offsets.append(UInt32(offset))
                offset += length
            }
            offsets.append(UInt32(offset))
            return partial || offset == r.count ? .success(offsets) : .failure(.badEntry(header.count))
        }
        if partial, case .success(let located) = offsets, header.firstVersion + UInt64(located.count - 1) <= extent.version {
            return decoded(from: block, dictionary: dictionary)  // the part fell short of the version asked for
        }
        return offsets.map { Decoded(raw: raw, offsets: $0, firstVersion: header.firstVersion) }
    }

    /// Whether the entry at `offset` of a part of a raw payload is cut by the
    /// part's end rather than damaged: its header is cut, or its lengths agree
    /// and only its bytes run past the end.
    private static func entryRunsPastPart(_ r: UnsafeRawBufferPointer, at offset: Int) -> Bool {
        guard offset + entryHeaderSize <= r.count else { return true }
        return declaredEntryLength(r, at: offset).map { offset + $0 > r.count } ?? false
    }
}
