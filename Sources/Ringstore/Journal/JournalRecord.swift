import Glibc
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The on-disk codec for journal records.
///
/// Every record starts on an 8-byte boundary; all integers are little-endian.
///
///     offset size  field
///      0     4     length: whole record in bytes, a multiple of 8
///      4     4     CRC32C of bytes [0,4) and [8, covered), where covered is
///                  `length` for events and 24 for padding
///      8     8     logical position of the record (tells a current record from
///                  a stale one left by an earlier lap of the ring)
///     16     1     kind (low 4 bits: 1 event, 2 padding) and flags
///                  (0x10 JSON content, 0x20 last event of its append)
///     17     1     type length (bytes)
///     18     2     stream name length (bytes)
///     20     4     epoch: the store session that wrote it (never decreases
///                  along the journal, so recovery can tell a record written
///                  after a truncation point from an older leftover behind it)
///    --- padding records end here (24 bytes); the rest of the ring tail is ignored
///     24     8     stream version
///     32    16     event ID (UUID bytes)
///     48     8     timestamp, nanoseconds since 1970 UTC
///     56     4     data length
///     60     4     metadata length
///     64     …     stream name, type, metadata, data, zero padding to 8
///
/// A ring tail shorter than 24 bytes cannot hold a padding record and is
/// skipped implicitly. This type is one of the few that handles raw memory;
/// every read it makes is bounds-checked against the buffer it is given.
enum JournalRecord {
    static let eventHeaderSize = 64
    static let paddingSize = 24
    static let alignment = 8

    static let kindEvent: UInt8 = 1
    static let kindPadding: UInt8 = 2
    static let flagJSON: UInt8 = 0x10
    static let flagEndOfAppend: UInt8 = 0x20

    /// Length of an event record with these field sizes, padding included.
    @inline(__always)
    static func eventLength(streamCount: Int, typeCount: Int, metadataCount: Int, dataCount: Int) -> Int {
        align(eventHeaderSize + streamCount + typeCount + metadataCount + dataCount)
    }

    @inline(__always)
    static func align(_ n: Int) -> Int { (n + alignment - 1) & ~(alignment - 1) }

    // MARK: - Encoding

    /// The fields of one event record, as the writer assigns them.
    struct EventFields {
        var position: UInt64
        var epoch: UInt32
        var version: UInt64
        var id: UUID
        var timestampNanoseconds: Int64
        var json: Bool
        var endOfAppend: Bool
    }

    /// Encodes an event record of exactly `length` bytes at `destination`.
    /// `length` must equal ``eventLength(streamCount:typeCount:metadataCount:dataCount:)``.
    static func encodeEvent(
        into destination: UnsafeMutableRawPointer, length: Int, fields: EventFields,
        stream: UnsafeRawBufferPointer, type: UnsafeRawBufferPointer,
        metadata: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer
    ) {
        var flags = kindEvent
        if fields.json { flags |= flagJSON }
        if fields.endOfAppend { flags |= flagEndOfAppend }
        // Safe: the caller hands `length` bytes (the staging buffer's reservation or a
        // sized buffer), and `length` is at least the 64-byte header written here.
        destination.storeBytes(of: UInt32(length).littleEndian, toByteOffset: 0, as: UInt32.self)
        destination.storeBytes(of: fields.position.littleEndian, toByteOffset: 8, as: UInt64.self)
        destination.storeBytes(of: flags, toByteOffset: 16, as: UInt8.self)
        destination.storeBytes(of: UInt8(type.count), toByteOffset: 17, as: UInt8.self)
        destination.storeBytes(of: UInt16(stream.count).littleEndian, toByteOffset: 18, as: UInt16.self)
        destination.storeBytes(of: fields.epoch.littleEndian, toByteOffset: 20, as: UInt32.self)
        destination.storeBytes(of: fields.version.littleEndian, toByteOffset: 24, as: UInt64.self)
        withUnsafeBytes(of: fields.id.uuid) { id in
            (destination + 32).copyMemory(from: id.baseAddress!, byteCount: 16)
        }
        destination.storeBytes(of: fields.timestampNanoseconds.littleEndian, toByteOffset: 48, as: Int64.self)
        destination.storeBytes(of: UInt32(data.count).littleEndian, toByteOffset: 56, as: UInt32.self)
        destination.storeBytes(of: UInt32(metadata.count).littleEndian, toByteOffset: 60, as: UInt32.self)
        var offset = eventHeaderSize
        @inline(__always) func put(_ part: UnsafeRawBufferPointer) {
            if let source = part.baseAddress, part.count > 0 {
                (destination + offset).copyMemory(from: source, byteCount: part.count)
                offset += part.count
            }
        }
        put(stream)
        put(type)
        put(metadata)
        put(data)
        if offset < length {
            (destination + offset).initializeMemory(as: UInt8.self, repeating: 0, count: length - offset)
        }
        destination.storeBytes(of: checksum(destination, covered: length).littleEndian, toByteOffset: 4, as: UInt32.self)
    }

    /// Encodes a padding record of `length` bytes (≥ 24) that fills the ring's tail.
    /// Only its 24-byte header is written; the rest of the tail keeps old bytes.
    static func encodePadding(into destination: UnsafeMutableRawPointer, length: Int, position: UInt64, epoch: UInt32) {
        precondition(length >= paddingSize && length % alignment == 0)
        // Safe: the precondition above; the caller hands `length` bytes.
        destination.initializeMemory(as: UInt8.self, repeating: 0, count: paddingSize)
        destination.storeBytes(of: UInt32(length).littleEndian, toByteOffset: 0, as: UInt32.self)
        destination.storeBytes(of: position.littleEndian, toByteOffset: 8, as: UInt64.self)
        destination.storeBytes(of: kindPadding, toByteOffset: 16, as: UInt8.self)
        destination.storeBytes(of: epoch.littleEndian, toByteOffset: 20, as: UInt32.self)
        destination.storeBytes(of: checksum(destination, covered: paddingSize).littleEndian, toByteOffset: 4, as: UInt32.self)
    }

    @inline(__always)
    private static func checksum(_ record: UnsafeRawPointer, covered: Int) -> UInt32 {
        let head = CRC32C.checksum(record, count: 4)
        return CRC32C.checksum(record + 8, count: covered - 8, continuing: head)
    }

    // MARK: - Decoding

    /// The fixed fields of a valid event record.
    struct EventHeader: Sendable {
        var length: Int
        var position: UInt64
        var epoch: UInt32
        var json: Bool
        var endOfAppend: Bool
        var streamCount: Int
        var typeCount: Int
        var version: UInt64
        /// The event ID's bytes: a `UUID` is made only when asked for (``id``),
        /// as the splitter's scan and block building never need one.
        var idBytes: uuid_t
        var timestampNanoseconds: Int64
        var dataCount: Int
        var metadataCount: Int

        var id: UUID { UUID(uuid: idBytes) }
    }

    /// What lies at a position in the ring.
    enum Inspection: Sendable {
        case event(EventHeader)
        case padding(length: Int, epoch: UInt32)
        /// Not a valid current record: the end of the journal, a torn or stale
        /// record, or damage. `reason` says which check failed.
        case invalid(reason: String)
    }

    /// Validates the record at the start of `bytes` (which runs to the end of the
    /// ring), expected at logical `position`: length, position, checksum, structure.
    /// `verifyChecksum: false` is for a record already checked once in this
    /// session (the splitter rereading what it scanned): its position still
    /// tells it from anything written over it since.
    static func inspect(_ bytes: UnsafeRawBufferPointer, expectedPosition position: UInt64,
                        verifyChecksum: Bool = true) -> Inspection {
        guard bytes.count >= paddingSize else { return .invalid(reason: "only \(bytes.count) bytes left before the ring's end") }
        // Safe: the loads up to the event fields read the 24-byte common header, checked just above.
        let length = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self)))
        if length == 0 { return .invalid(reason: "length is 0 (no record written here)") }
        guard length >= paddingSize, length % alignment == 0, length <= bytes.count else {
            return .invalid(reason: "length \(length) is not a valid record length here (\(bytes.count) bytes to the ring's end)")
        }
        let storedPosition = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        guard storedPosition == position else {
            return .invalid(reason: "record says position \(storedPosition), expected \(position) (stale record from an earlier lap)")
        }
        let kindFlags = bytes[16]
        let epoch = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 20, as: UInt32.self))
        let storedCRC = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        switch kindFlags & 0x0F {
        case kindPadding:
            guard checksum(bytes.baseAddress!, covered: paddingSize) == storedCRC else {
                return .invalid(reason: "padding record checksum mismatch")
            }
            guard length == bytes.count else {
                return .invalid(reason: "padding record of \(length) bytes does not reach the ring's end (\(bytes.count) bytes)")
            }
            return .padding(length: length, epoch: epoch)
        case kindEvent:
            guard length >= eventHeaderSize else { return .invalid(reason: "event record of \(length) bytes is shorter than its header") }
            guard !verifyChecksum || checksum(bytes.baseAddress!, covered: length) == storedCRC else {
                return .invalid(reason: "event record checksum mismatch")
            }
            // Safe: `eventHeaderSize <= length <= bytes.count` (checked above) covers the event header's fields.
            let typeCount = Int(bytes[17])
            let streamCount = Int(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 18, as: UInt16.self)))
            let dataCount = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 56, as: UInt32.self)))
            let metadataCount = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 60, as: UInt32.self)))
            guard eventLength(streamCount: streamCount, typeCount: typeCount, metadataCount: metadataCount, dataCount: dataCount) == length,
                  streamCount > 0
            else {
                return .invalid(reason: "event record field lengths do not add up to its length \(length)")
            }
            var uuid: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
            withUnsafeMutableBytes(of: &uuid) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[32..<48])) }
            return .event(EventHeader(
                length: length, position: position, epoch: epoch,
                json: kindFlags & flagJSON != 0, endOfAppend: kindFlags & flagEndOfAppend != 0,
                streamCount: streamCount, typeCount: typeCount,
                version: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 24, as: UInt64.self)),
                idBytes: uuid,
                timestampNanoseconds: Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: 48, as: Int64.self)),
                dataCount: dataCount, metadataCount: metadataCount))
        default:
            return .invalid(reason: "unknown record kind \(kindFlags & 0x0F)")
        }
    }

    /// The stream name of a valid event record.
    static func streamName(_ bytes: UnsafeRawBufferPointer, _ header: EventHeader) -> String {
        String(decoding: streamNameBytes(bytes, header), as: UTF8.self)
    }

    /// The stream name's bytes of a valid event record.
    static func streamNameBytes(_ bytes: UnsafeRawBufferPointer, _ header: EventHeader) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[eventHeaderSize..<(eventHeaderSize + header.streamCount)])
    }

    /// Whether a valid event record's stream name has exactly the bytes of
    /// `name` (compared without decoding the record's name into a string).
    static func streamName(_ bytes: UnsafeRawBufferPointer, _ header: EventHeader, is name: String) -> Bool {
        var name = name
        guard name.utf8.count == header.streamCount else { return false }
        // memcmp, not `elementsEqual`: the scan asks this for every record, and a
        // byte-by-byte Swift loop cost about 300 instructions per event.
        return name.withUTF8 { memcmp($0.baseAddress!, bytes.baseAddress! + eventHeaderSize, header.streamCount) == 0 }
    }

    /// The whole event of a valid event record.
    static func decodeEvent(_ bytes: UnsafeRawBufferPointer, _ header: EventHeader) -> RecordedEvent {
        var offset = eventHeaderSize
        func take(_ count: Int) -> UnsafeRawBufferPointer {
            defer { offset += count }
            return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)])
        }
        let stream = String(decoding: take(header.streamCount), as: UTF8.self)
        let type = String(decoding: take(header.typeCount), as: UTF8.self)
        let metadata = [UInt8](take(header.metadataCount))
        let data = [UInt8](take(header.dataCount))
        return RecordedEvent(
            stream: stream, version: header.version, position: header.position, id: header.id,
            type: type, data: data, metadata: metadata, contentType: header.json ? .json : .binary,
            timestampNanoseconds: header.timestampNanoseconds)
    }
}
