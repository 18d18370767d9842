import Foundation
import FuzzDriver
@testable import Ringstore

/// The journal record decoder: `JournalRecord.inspect` on bytes that run to the
/// ring's end, then `streamName` and `decodeEvent` of what it accepts, as
/// recovery and the splitter do. Decoded fields must match the record's own counts.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var (fix, bytes) = fuzzInput(data, size)
    guard bytes.count >= 24 else {
        bytes.withUnsafeBytes { _ = JournalRecord.inspect($0, expectedPosition: 0) }
        return 0
    }
    let position = bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self)) }
    if fix {
        let length = bytes.withUnsafeBytes { Int(UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 0, as: UInt32.self))) }
        let covered = bytes[16] & 0x0F == JournalRecord.kindPadding ? JournalRecord.paddingSize : min(length, bytes.count)
        if covered >= 8 {
            let crc = bytes.withUnsafeBytes { b in
                CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[8..<covered]), continuing: CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[0..<4])))
            }
            withUnsafeBytes(of: crc.littleEndian) { bytes.replaceSubrange(4..<8, with: $0) }
        }
    }
    bytes.withUnsafeBytes { b in
        switch JournalRecord.inspect(b, expectedPosition: position) {
        case .event(let header):
            fuzzCheck(header.length <= b.count, "accepted a record longer than its bytes")
            let name = JournalRecord.streamName(b, header)
            let event = JournalRecord.decodeEvent(b, header)
            fuzzCheck(event.stream == name, "stream name differs between streamName and decodeEvent")
            fuzzCheck(event.data.count == header.dataCount && event.metadata.count == header.metadataCount,
                      "decoded sizes differ from the header's")
        case .padding(let length, _):
            fuzzCheck(length == b.count, "accepted padding that does not reach the end")
        case .invalid:
            break
        }
    }
    return 0
}

@_cdecl("FuzzJournalRecord_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc: argc, argv: argv, fuzzOne)
}

@_cdecl("LLVMFuzzerInitialize")
func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    writeSeedsIfAsked({
        func record(stream: String, type: String, metadata: [UInt8], data: [UInt8], json: Bool) -> [UInt8] {
            let length = JournalRecord.eventLength(streamCount: stream.utf8.count, typeCount: type.utf8.count,
                                                   metadataCount: metadata.count, dataCount: data.count)
            var bytes = [UInt8](repeating: 0, count: length)
            let fields = JournalRecord.EventFields(position: 4096, epoch: 2, version: 7, id: UUID(), timestampNanoseconds: 1_700_000_000,
                                                   json: json, endOfAppend: true)
            bytes.withUnsafeMutableBytes { out in
                Array(stream.utf8).withUnsafeBytes { s in
                    Array(type.utf8).withUnsafeBytes { t in
                        metadata.withUnsafeBytes { m in
                            data.withUnsafeBytes { d in
                                JournalRecord.encodeEvent(into: out.baseAddress!, length: length, fields: fields, stream: s, type: t, metadata: m, data: d)
                            }
                        }
                    }
                }
            }
            return bytes
        }
        var padding = [UInt8](repeating: 0, count: 64)
        padding.withUnsafeMutableBytes { JournalRecord.encodePadding(into: $0.baseAddress!, length: 64, position: 8192, epoch: 2) }
        return [
            ("event-json", record(stream: "order-42", type: "OrderPlaced", metadata: [], data: Array(#"{"total":42}"#.utf8), json: true)),
            ("event-binary", record(stream: "s", type: "T", metadata: [1, 2, 3], data: [0, 255, 7], json: false)),
            ("event-then-tail", record(stream: "x", type: "Y", metadata: [], data: [], json: true) + [UInt8](repeating: 0, count: 40)),
            ("padding", padding),
        ]
    }())
    return 0
}
