#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The codecs on their own, for the benchmark package to time them without a
/// store: `@_spi(Benchmarks) import Ringstore`. Not part of the supported API;
/// each call is a thin wrapper over what the journal and stream files use.
@_spi(Benchmarks)
public enum Codecs {
    /// The CRC32C of `bytes` (SSE4.2 / ARMv8 CRC instructions where available), as records and blocks use it.
    public static func crc32c(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        CRC32C.checksum(bytes)
    }

    /// Encodes `events` as consecutive journal records of `stream` (versions and
    /// positions from 0) at the start of `buffer`, growing it if needed; returns the bytes used.
    public static func encodeJournalRecords(_ events: [EventData], stream: String, into buffer: inout [UInt8]) -> Int {
        var streamName = stream
        return streamName.withUTF8 { name in
            let needed = events.reduce(0) { total, event in
                total + JournalRecord.eventLength(streamCount: name.count, typeCount: event.type.utf8.count,
                                                  metadataCount: event.metadata.count, dataCount: event.data.count)
            }
            if buffer.count < needed { buffer = [UInt8](repeating: 0, count: needed) }
            var offset = 0
            buffer.withUnsafeMutableBytes { destination in
                for (index, event) in events.enumerated() {
                    var type = event.type
                    let length = JournalRecord.eventLength(streamCount: name.count, typeCount: type.utf8.count,
                                                           metadataCount: event.metadata.count, dataCount: event.data.count)
                    let fields = JournalRecord.EventFields(
                        position: UInt64(offset), epoch: 1, version: UInt64(index), id: event.id, timestampNanoseconds: 0,
                        json: event.contentType == .json, endOfAppend: index == events.count - 1)
                    type.withUTF8 { typeBytes in
                        event.metadata.withUnsafeBytes { metadata in
                            event.data.withUnsafeBytes { data in
                                JournalRecord.encodeEvent(
                                    into: destination.baseAddress! + offset, length: length, fields: fields,
                                    stream: UnsafeRawBufferPointer(name), type: UnsafeRawBufferPointer(typeBytes),
                                    metadata: metadata, data: data)
                            }
                        }
                    }
                    offset += length
                }
            }
            return offset
        }
    }

    /// Validates (length, position, checksum, structure) and decodes the records
    /// in the first `length` bytes of `buffer`, as recovery and `$all` reads do.
    public static func decodeJournalRecords(_ buffer: [UInt8], length: Int) throws -> [RecordedEvent] {
        guard length >= 0, length <= buffer.count else {
            throw RingstoreError(.invalidArgument, "length \(length) is outside the buffer of \(buffer.count) bytes")
        }
        return try buffer.withUnsafeBytes { all in
            let bytes = UnsafeRawBufferPointer(rebasing: all[..<length])
            var events: [RecordedEvent] = []
            var offset = 0
            while offset < bytes.count {
                let rest = UnsafeRawBufferPointer(rebasing: bytes[offset...])
                guard case .event(let header) = JournalRecord.inspect(rest, expectedPosition: UInt64(offset)) else {
                    throw RingstoreError(.corruptData, "no valid event record at offset \(offset)", offset: UInt64(offset))
                }
                events.append(JournalRecord.decodeEvent(rest, header))
                offset += header.length
            }
            return events
        }
    }

    /// Encodes `events` (consecutive versions of one stream) as one stream-file
    /// block appended to `output`, LZ4-compressed when `compress` and it pays.
    /// `events` must not be empty.
    public static func encodeStreamBlock(_ events: [RecordedEvent], compress: Bool, into output: inout [UInt8]) {
        precondition(!events.isEmpty, "a stream block holds at least one event")
        StreamBlock.encode(events[...], compress: compress, into: &output)
    }

    /// Checks and decodes one whole stream-file block of `stream`.
    public static func decodeStreamBlock(_ block: [UInt8], stream: String) throws -> [RecordedEvent] {
        switch StreamBlock.decode(block, stream: stream) {
        case .success(let events): return events
        case .failure(let error):
            throw RingstoreError(.corruptData, "stream block of \(stream) does not decode: \(error)", stream: stream)
        }
    }
}
