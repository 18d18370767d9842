import CLZ4
import Glibc
import Synchronization

/// An LZ4 dictionary: raw event bytes of other streams, against which small
/// blocks are compressed. Each split segment has one (a sample of its first
/// write), and a store has one for its stream files once compacted or once
/// the segment mover adopted a segment's (``StreamFileDictionary``).
///
/// Why: a checkpoint writes one entry per stream with the few events that
/// stream received since the last one (about six with one-event appends over
/// 10,000 streams, 1.5 KiB raw). LZ4 finds little to match within so few
/// bytes: JSON events that shrink 2.6-fold in a 64 KiB block shrank only
/// 1.76-fold in such entries. Events of different streams are alike (the
/// same keys, similar values), so compressing each entry against a sample of
/// other streams' events gives it the context it lacks: 154 → 115 bytes
/// stored per 200-byte event with 16 KiB (measured on segments of `ringstore
/// bench`). RocksDB's `max_dict_bytes` does the same for the blocks of one
/// file, from the file's first data. Compaction uses the same to write small
/// blocks (cheap to decode where `$all` reads a few events of each) that are
/// still as small on disk as 64 KiB blocks without a dictionary.
///
/// Each block still decodes on its own (given the dictionary): the
/// dictionary is not a stream of earlier blocks. Where it is stored, it is
/// stored twice, each copy with its own checksum, so one damaged copy does
/// not make every block compressed against it unreadable. A block records
/// the dictionary's ``id`` (a checksum of its bytes), so it is never decoded
/// against another one.
///
/// Immutable once made; compressing takes a lock of its own (one prepared
/// LZ4 state is copied per entry), decompressing none.
final class CompressionDictionary: @unchecked Sendable {
    // @unchecked Sendable: `bytes` is never written after `init`; the LZ4 states
    // are only touched under `states`' lock.

    /// At most this many bytes: 8-64 KiB gave 0.58-0.56 bytes stored per
    /// payload byte against 0.77 without (16 KiB: 0.58).
    static let maxBytes = 16 << 10
    /// Entries of this many raw bytes or more are compressed on their own: they
    /// have their own context, and the segment mover may copy them into a
    /// stream file as they are, where no dictionary exists.
    static let entryLimit = SplitStore.movedWholeBytes

    /// The dictionary's bytes (never empty).
    let bytes: UnsafeMutableRawBufferPointer
    /// What a block compressed against this dictionary records (``StreamBlock``'s
    /// header, bytes 44-47): the CRC32C of the bytes, never 0 (0 is a block of a
    /// segment written before blocks recorded it).
    let id: UInt32
    /// A number only dictionaries of this process with the same bytes share
    /// (``DictionaryDecodeScratch`` knows a dictionary by it, not by its
    /// address, which a later one may reuse).
    ///
    /// Why shared: every bucket file holds its own copy of the store's
    /// dictionary, and `$all` over streams in bucket files decodes entries of
    /// the 64 files in turn; with a number per copy each decode copied the 16
    /// KiB into the thread's scratch again.
    let serial: UInt64

    private static let serials = Atomic<UInt64>(0)

    /// A dictionary alive in this process and its serial, under its ``id``;
    /// only touched under ``registry``'s lock.
    private struct Registration: @unchecked Sendable {
        weak var dictionary: CompressionDictionary?
        let serial: UInt64
    }

    /// Registrations by id, and how many were added since the last sweep of
    /// dead ones (dictionaries are made per segment and per file opened, so the
    /// table stays about as large as the dictionaries alive).
    private static let registry = Mutex<(byID: [UInt32: [Registration]], added: Int)>(([:], 0))

    /// The serial of a live dictionary with the same bytes, or nil.
    private static func sharedSerial(of bytes: UnsafeRawBufferPointer, id: UInt32) -> UInt64? {
        registry.withLock { r in
            r.byID[id]?.removeAll { $0.dictionary == nil }
            for registration in r.byID[id] ?? [] {
                guard let other = registration.dictionary, other.bytes.count == bytes.count else { continue }
                if memcmp(other.bytes.baseAddress!, bytes.baseAddress!, bytes.count) == 0 { return registration.serial }
            }
            return nil
        }
    }

    private static func register(_ dictionary: CompressionDictionary) {
        registry.withLock { r in
            r.added += 1
            if r.added >= 64 {
                r.added = 0
                for id in Array(r.byID.keys) {
                    r.byID[id]?.removeAll { $0.dictionary == nil }
                    if r.byID[id]?.isEmpty == true { r.byID[id] = nil }
                }
            }
            r.byID[dictionary.id, default: []].append(Registration(dictionary: dictionary, serial: dictionary.serial))
        }
    }

    private struct States: @unchecked Sendable {
        /// A copy of `bytes` followed by room for one source of up to
        /// ``CompressionDictionary/entryLimit`` bytes (see ``compress(_:into:)``), made on first use.
        var prefixed: UnsafeMutableRawPointer?
        /// `LZ4_loadDict` of the copy of `bytes` in `prefixed`, made on first use.
        var prepared: UnsafeMutablePointer<LZ4_stream_t>?
        /// A copy of `prepared` for each compression (LZ4 forgets the dictionary after one).
        var working: UnsafeMutablePointer<LZ4_stream_t>?
    }

    private let states = Mutex(States())

    /// A dictionary of `bytes` (1 to ``maxBytes`` of them).
    init(_ bytes: UnsafeRawBufferPointer) {
        precondition(!bytes.isEmpty && bytes.count <= Self.maxBytes, "a compression dictionary holds 1 to \(Self.maxBytes) bytes")
        self.bytes = .allocate(byteCount: bytes.count, alignment: 16)
        self.bytes.copyMemory(from: bytes)
        let id = max(CRC32C.checksum(bytes), 1)
        self.id = id
        serial = Self.sharedSerial(of: bytes, id: id) ?? Self.serials.add(1, ordering: .relaxed).newValue
        Self.register(self)
    }

    deinit {
        releaseCompressionStates()
        bytes.deallocate()
    }

    /// At most this many bytes of one block go into a sample: more blocks, so
    /// more streams, make a dictionary that fits more entries (0.578 → 0.564
    /// bytes stored per payload byte against whole blocks; 256 B: 0.568, 2 KiB: 0.570).
    static let sampleBytesPerBlock = 1 << 10

    /// A sample of the raw payloads of `blocks`, in order, up to
    /// ``sampleBytesPerBlock`` of each and ``maxBytes`` in all; nil if they hold no bytes.
    static func sample(of blocks: some Sequence<StreamBlock.RawBlock>) -> CompressionDictionary? {
        var sample: [UInt8] = []
        for block in blocks where !block.raw.isEmpty {
            sample.append(contentsOf: block.raw.prefix(min(sampleBytesPerBlock, maxBytes - sample.count)))
            if sample.count == maxBytes { break }
        }
        guard !sample.isEmpty else { return nil }
        return sample.withUnsafeBytes { CompressionDictionary($0) }
    }

    /// Compresses `source` against the dictionary into `destination` (at least
    /// `LZ4_compressBound(source.count)` bytes); the compressed size, or 0 if
    /// it did not fit or no state could be made.
    ///
    /// Why the source is first copied behind a copy of the dictionary: LZ4
    /// then sees the dictionary as the prefix of the same buffer and takes its
    /// prefix loop, not the external-dictionary one, which checks every match
    /// against two buffers. Either way the block decodes against the
    /// dictionary alone (the loops differ in speed; the bytes they choose were
    /// the same for 3,653 of 3,673 sources tried, and as small); the prefix
    /// loop compressed 1-16 KiB of JSON events 4-24 % faster here (the copy
    /// included), and the split compresses every event once.
    func compress(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) -> Int {
        guard let base = source.baseAddress, let target = destination.baseAddress, !source.isEmpty else { return 0 }
        return states.withLock { s in
            if s.prefixed == nil {
                let prefixed = UnsafeMutableRawPointer.allocate(byteCount: bytes.count + Self.entryLimit, alignment: 16)
                prefixed.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
                s.prefixed = prefixed
            }
            if s.prepared == nil {
                guard let p = LZ4_createStream() else { return 0 }
                _ = LZ4_loadDict(p, s.prefixed!.assumingMemoryBound(to: CChar.self), Int32(bytes.count))
                s.prepared = p
            }
            if s.working == nil { s.working = LZ4_createStream() }
            guard let prefixed = s.prefixed, let prepared = s.prepared, let working = s.working else { return 0 }
            // Copying a state prepared by `LZ4_loadDict` is the library's documented
            // way to reuse a dictionary without hashing it again for every entry.
            working.update(from: prepared, count: 1)
            let input: UnsafeRawPointer
            if source.count <= Self.entryLimit {
                // Safe: the room after the dictionary's copy holds `entryLimit` bytes.
                let room = prefixed + bytes.count
                room.copyMemory(from: base, byteCount: source.count)
                input = UnsafeRawPointer(room)
            } else {
                input = base  // larger than callers pass: the external-dictionary loop
            }
            let size = LZ4_compress_fast_continue(
                working, input.assumingMemoryBound(to: CChar.self), target.assumingMemoryBound(to: CChar.self),
                Int32(source.count), Int32(destination.count), 1)
            return Int(max(0, size))
        }
    }

    /// Frees the compression states (up to 64 KiB), made again if this dictionary
    /// compresses once more: a segment no longer written to keeps only its bytes.
    func releaseCompressionStates() {
        states.withLock { s in
            if let p = s.prepared { _ = LZ4_freeStream(p) }
            if let w = s.working { _ = LZ4_freeStream(w) }
            s.prefixed?.deallocate()
            s = States()
        }
    }

    /// Decompresses `stored` (compressed against this dictionary) into
    /// `destination`; the size produced, negative if the bytes are not such a block.
    func decompress(_ stored: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) -> Int32 {
        if let size = DictionaryDecodeScratch.decode(stored, against: self, count: destination.count, partial: false, into: destination) {
            return size
        }
        guard let source = stored.baseAddress, let target = destination.baseAddress else { return -1 }
        return LZ4_decompress_safe_usingDict(
            source.assumingMemoryBound(to: CChar.self), target.assumingMemoryBound(to: CChar.self),
            Int32(stored.count), Int32(destination.count),
            UnsafeRawPointer(bytes.baseAddress!).assumingMemoryBound(to: CChar.self), Int32(bytes.count))
    }

    /// ``decompress(_:into:)`` of the first `count` raw bytes only (`count` ≤ the destination's size).
    func decompressPrefix(_ stored: UnsafeRawBufferPointer, count: Int, into destination: UnsafeMutableRawBufferPointer) -> Int32 {
        if let size = DictionaryDecodeScratch.decode(stored, against: self, count: count, partial: true, into: destination) {
            return size
        }
        guard count <= destination.count, let source = stored.baseAddress, let target = destination.baseAddress else { return -1 }
        return LZ4_decompress_safe_partial_usingDict(
            source.assumingMemoryBound(to: CChar.self), target.assumingMemoryBound(to: CChar.self),
            Int32(stored.count), Int32(count), Int32(count),
            UnsafeRawPointer(bytes.baseAddress!).assumingMemoryBound(to: CChar.self), Int32(bytes.count))
    }

    // MARK: - Stored: in a segment's header area, or a stream-file dictionary's file

    /// One stored copy: `[length u32][CRC32C of length and bytes u32][bytes]`, zero-padded to 8.
    static func copyLength(ofBytes count: Int) -> Int { (8 + count + 7) & ~7 }

    /// The longest area.
    static var maxAreaLength: Int { 2 * copyLength(ofBytes: maxBytes) }

    /// The area holding the dictionary twice (no dictionary: two copies of length 0).
    static func encodeArea(_ dictionary: CompressionDictionary?) -> [UInt8] {
        let body = dictionary.map { [UInt8](UnsafeRawBufferPointer($0.bytes)) } ?? []
        var copy: [UInt8] = []
        LittleEndian.append(UInt32(body.count), to: &copy)
        let crc = body.withUnsafeBytes { CRC32C.checksum($0, continuing: CRC32C.checksum(copy)) }
        LittleEndian.append(crc, to: &copy)
        copy += body
        copy += [UInt8](repeating: 0, count: copyLength(ofBytes: body.count) - copy.count)
        return copy + copy
    }

    /// What reading a dictionary area found.
    struct AreaReading {
        /// The dictionary of the first intact copy (nil: there is none, or no copy is intact).
        var dictionary: CompressionDictionary?
        /// Offsets in the area of the copies that are damaged (0, the copy length, or both).
        var damagedCopies: [Int]
    }

    /// Reads an area of `bytes.count` bytes (two copies of equal length): the
    /// dictionary of the first intact copy, and which copies are damaged (a
    /// second copy that differs from an intact first one counts as damaged).
    static func parseArea(_ bytes: UnsafeRawBufferPointer) -> AreaReading {
        let copyLength = bytes.count / 2
        guard copyLength >= 8, bytes.count == 2 * copyLength, copyLength % 8 == 0 else {
            return AreaReading(dictionary: nil, damagedCopies: [0, copyLength])
        }
        func intact(at offset: Int) -> Bool {
            let count = Int(LittleEndian.load(UInt32.self, from: bytes, at: offset))
            guard count <= maxBytes, copyLength == Self.copyLength(ofBytes: count) else { return false }
            let body = UnsafeRawBufferPointer(rebasing: bytes[(offset + 8)..<(offset + 8 + count)])
            let crc = CRC32C.checksum(body, continuing: CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + 4)])))
            return crc == LittleEndian.load(UInt32.self, from: bytes, at: offset + 4)
                && bytes[(offset + 8 + count)..<(offset + copyLength)].allSatisfy { $0 == 0 }
        }
        let first = intact(at: 0)
        let second = intact(at: copyLength) && (!first || bytes[0..<copyLength].elementsEqual(bytes[copyLength...]))
        var damaged: [Int] = []
        if !first { damaged.append(0) }
        if !second { damaged.append(copyLength) }
        guard first || second else { return AreaReading(dictionary: nil, damagedCopies: damaged) }
        let at = first ? 0 : copyLength
        let count = Int(LittleEndian.load(UInt32.self, from: bytes, at: at))
        let dictionary = count == 0 ? nil : CompressionDictionary(UnsafeRawBufferPointer(rebasing: bytes[(at + 8)..<(at + 8 + count)]))
        return AreaReading(dictionary: dictionary, damagedCopies: damaged)
    }
}
