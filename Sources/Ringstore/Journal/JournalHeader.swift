/// The journal's header: what survives between sessions besides the records.
///
/// Stored in two 64-byte slots (at offsets 0 and 2048, in different disk
/// sectors) written alternately, each with its own CRC32C. A write that tears
/// one slot leaves the other intact, so opening always finds the newest slot
/// that is whole.
///
///     offset size  field
///      0     8     magic "RSJOURN1"
///      8     4     format version (1)
///     12     4     reserved
///     16     8     sequence: +1 on every header write; the larger valid slot wins
///     24     8     ring capacity in bytes
///     32     8     checkpoint: records before it are in durable stream files and
///                  their ring space may be reused; recovery starts here
///     40     4     epoch: the session number, +1 at every open
///     44     4     flags (1: closed cleanly)
///     48     8     journal end at the last clean close (informational)
///     56     4     reserved
///     60     4     CRC32C of bytes [0, 60)
struct JournalHeader: Sendable, Equatable {
    static let slotSize = 64
    static let slotOffsets: [UInt64] = [0, 2048]
    static let formatVersion: UInt32 = 1
    private static let magic: [UInt8] = Array("RSJOURN1".utf8)

    var sequence: UInt64
    var capacity: UInt64
    var checkpoint: UInt64
    var epoch: UInt32
    var closedCleanly: Bool
    var endAtClose: UInt64

    /// The slot this header is written to: slots alternate with the sequence.
    var slotOffset: UInt64 { Self.slotOffsets[Int(sequence % 2)] }

    func encoded() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Self.slotSize)
        bytes.withUnsafeMutableBytes { b in
            Self.magic.withUnsafeBytes { b.copyMemory(from: $0) }
            LittleEndian.store(Self.formatVersion, into: b, at: 8)
            LittleEndian.store(sequence, into: b, at: 16)
            LittleEndian.store(capacity, into: b, at: 24)
            LittleEndian.store(checkpoint, into: b, at: 32)
            LittleEndian.store(epoch, into: b, at: 40)
            LittleEndian.store(UInt32(closedCleanly ? 1 : 0), into: b, at: 44)
            LittleEndian.store(endAtClose, into: b, at: 48)
            let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[0..<60]))
            LittleEndian.store(crc, into: b, at: 60)
        }
        return bytes
    }

    /// Why a slot was rejected.
    enum SlotError: Error, Equatable {
        case empty
        case badMagic
        case badChecksum
        case unsupportedVersion(UInt32)
        /// A whole slot whose values cannot be right (capacity, checkpoint).
        case implausible(String)
    }

    /// Checks what decoding cannot: that this header leaves room for the
    /// session an open starts (the sequence and session number are incremented,
    /// and no session number may pass `UInt32.max`). `offset` is the slot it was
    /// read from. Such values are never written, so they are damage (or a
    /// crafted file) that happened to keep a valid CRC.
    func checkRoomForAnotherSession(path: String, offset: UInt64) throws {
        // Each header write adds one to the sequence; half the range is more than any store will ever write.
        guard sequence <= UInt64.max / 2 else {
            throw RingstoreError(.corruptData, "journal \(path): the header slot at offset \(offset) has sequence number \(sequence), which no journal reaches",
                                 path: path, offset: offset)
        }
        // The next session is epoch + 1, and its records may be one more past the header (see `JournalRecovery`).
        guard epoch < UInt32.max - 1 else {
            throw RingstoreError(.corruptData, "journal \(path): the header slot at offset \(offset) has session number \(epoch), which leaves no room for another session",
                                 path: path, offset: offset)
        }
    }

    /// Decodes one slot.
    static func decode(_ slot: ArraySlice<UInt8>) -> Result<JournalHeader, SlotError> {
        guard slot.count >= slotSize else { return .failure(.empty) }
        return Array(slot.prefix(slotSize)).withUnsafeBytes { b in
            if b.allSatisfy({ $0 == 0 }) { return .failure(.empty) }
            guard b.prefix(8).elementsEqual(magic) else { return .failure(.badMagic) }
            let crc = LittleEndian.load(UInt32.self, from: b, at: 60)
            guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[0..<60])) == crc else { return .failure(.badChecksum) }
            let version = LittleEndian.load(UInt32.self, from: b, at: 8)
            guard version == formatVersion else { return .failure(.unsupportedVersion(version)) }
            let header = JournalHeader(
                sequence: LittleEndian.load(UInt64.self, from: b, at: 16),
                capacity: LittleEndian.load(UInt64.self, from: b, at: 24),
                checkpoint: LittleEndian.load(UInt64.self, from: b, at: 32),
                epoch: LittleEndian.load(UInt32.self, from: b, at: 40),
                closedCleanly: LittleEndian.load(UInt32.self, from: b, at: 44) & 1 != 0,
                endAtClose: LittleEndian.load(UInt64.self, from: b, at: 48))
            // The CRC only proves the slot is as written; a capacity of 0 would divide by
            // zero in every position calculation, and positions must not overflow.
            guard header.capacity >= 64 << 10, header.capacity % 4096 == 0, header.capacity <= 1 << 44 else {
                return .failure(.implausible("ring capacity \(header.capacity)"))
            }
            guard header.checkpoint <= UInt64.max / 2 else { return .failure(.implausible("checkpoint \(header.checkpoint)")) }
            return .success(header)
        }
    }

    /// The newest whole header in a journal's header area.
    static func newest(in area: [UInt8], path: String) throws -> JournalHeader {
        try newestSlot(in: area, path: path).header
    }

    /// The newest whole header in a journal's header area, and the offset of the slot it was read from.
    static func newestSlot(in area: [UInt8], path: String) throws -> (header: JournalHeader, offset: UInt64) {
        var candidates: [(header: JournalHeader, offset: UInt64)] = []
        var problems: [String] = []
        for offset in slotOffsets {
            let start = Int(offset)
            let slot = start < area.count ? area[start..<min(area.count, start + slotSize)] : []
            switch decode(slot) {
            case .success(let header): candidates.append((header, offset))
            case .failure(let error): problems.append("slot at offset \(offset): \(error)")
            }
        }
        if let best = candidates.max(by: { $0.header.sequence < $1.header.sequence }) { return best }
        if problems.contains(where: { $0.contains("unsupportedVersion") }) {
            throw RingstoreError(.incompatibleFormat, "journal \(path) has an unsupported format version (\(problems.joined(separator: "; ")))", path: path)
        }
        throw RingstoreError(.corruptData, "journal \(path) has no valid header slot (\(problems.joined(separator: "; ")))", path: path, offset: 0)
    }
}
