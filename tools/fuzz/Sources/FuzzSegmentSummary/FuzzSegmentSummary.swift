import FuzzDriver
@testable import Ringstore

/// A split segment's summary (`SegmentSummary.decode`): what decodes must
/// encode back to the same bytes (one encoding per summary), and applying it
/// to the heads must not trap.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var (fix, bytes) = fuzzInput(data, size)
    if fix, bytes.count >= SegmentSummary.headerSize + 4 {
        let end = bytes.count - 4
        let crc = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[..<end])) }
        withUnsafeBytes(of: crc.littleEndian) { bytes.replaceSubrange(end..<(end + 4), with: $0) }
    }
    if let summary = SegmentSummary.decode(bytes, segment: 5) {
        fuzzCheck(summary.encoded() == bytes, "a decoded summary does not encode back to its bytes")
        if summary.rows.last.map({ $0.stream < 1 << 20 }) ?? true {
            var heads: [SplitSegments.Head] = []
            summary.apply(to: &heads)
            summary.apply(to: &heads)
        }
    }
    return 0
}

@_cdecl("FuzzSegmentSummary_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc: argc, argv: argv, fuzzOne)
}

@_cdecl("LLVMFuzzerInitialize")
func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    writeSeedsIfAsked({
        var builder = SegmentSummary.Builder(segment: 5)
        func header(_ first: UInt64, _ count: Int, raw: Int, position: UInt64) -> StreamBlock.Header {
            StreamBlock.Header(compressed: true, firstVersion: first, firstPosition: position, count: count, rawLength: raw,
                               storedLength: 10, payloadCRC: 0)
        }
        builder.add(stream: 3, offset: 40, header: header(0, 2, raw: 300, position: 50))
        builder.add(stream: 900, offset: 9000, header: header(1 << 40, 1, raw: 70_000, position: 1 << 33))
        builder.add(stream: 3, offset: 200_000, header: header(2, 3, raw: .max, position: 60))
        let rows = builder.encoded(size: 300_000)!
        let empty = SegmentSummary.Builder(segment: 5).encoded(size: 24)!
        return [("rows", rows), ("empty", empty)]
    }())
    return 0
}
