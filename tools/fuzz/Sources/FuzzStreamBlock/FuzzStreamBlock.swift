import Foundation
import FuzzDriver
@testable import Ringstore

/// The stream-file block decoder: `StreamBlock.parseHeader` and `decode` (LZ4
/// included). Whatever it accepts must hold exactly the header's event count,
/// with consecutive versions.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var (fix, block) = fuzzInput(data, size)
    if fix && block.count >= StreamBlock.headerSize {
        let headerCRC = block.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<36])) }
        withUnsafeBytes(of: headerCRC.littleEndian) { block.replaceSubrange(36..<40, with: $0) }
        let payloadCRC = CRC32C.checksum(Array(block[StreamBlock.headerSize...]))
        withUnsafeBytes(of: payloadCRC.littleEndian) { block.replaceSubrange(40..<44, with: $0) }
    }
    _ = StreamBlock.parseHeader(block)
    if case .success(let events) = StreamBlock.decode(block, stream: "s"), case .success(let header) = StreamBlock.parseHeader(block) {
        fuzzCheck(events.count == header.count, "decoded \(events.count) events, header says \(header.count)")
        fuzzCheck(events.enumerated().allSatisfy { $0.element.version == header.firstVersion + UInt64($0.offset) }, "versions not consecutive")
    }
    return 0
}

@_cdecl("FuzzStreamBlock_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc: argc, argv: argv, fuzzOne)
}

@_cdecl("LLVMFuzzerInitialize")
func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    writeSeedsIfAsked({
        func events(_ count: Int, repetitive: Bool) -> [RecordedEvent] {
            (0..<count).map { i in
                let data = repetitive ? Array(#"{"n":\#(i),"pad":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}"#.utf8) : (0..<40).map { UInt8(truncatingIfNeeded: $0 * 37 + i) }
                return RecordedEvent(stream: "s", version: UInt64(10 + i), position: UInt64(4096 + i * 128), id: UUID(), type: "T\(i % 3)",
                                     data: data, metadata: i % 2 == 0 ? [9, 9] : [], contentType: repetitive ? .json : .binary,
                                     timestampNanoseconds: 1_700_000_000 + Int64(i))
            }
        }
        var compressed: [UInt8] = []
        StreamBlock.encode(events(20, repetitive: true)[...], compress: true, into: &compressed)
        var plain: [UInt8] = []
        StreamBlock.encode(events(3, repetitive: false)[...], compress: false, into: &plain)
        var single: [UInt8] = []
        StreamBlock.encode(events(1, repetitive: false)[...], compress: true, into: &single)
        return [("compressed", compressed), ("plain", plain), ("single", single)]
    }())
    return 0
}
