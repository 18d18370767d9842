import FuzzDriver
@testable import Ringstore

/// The journal header slots: `JournalHeader.decode` of one slot and `newest(in:)`
/// of a whole header area. A decoded header must re-encode to one that decodes equal.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var (fix, area) = fuzzInput(data, size)
    if fix {
        for offset in JournalHeader.slotOffsets.map(Int.init) where area.count >= offset + JournalHeader.slotSize {
            let crc = area.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[offset..<(offset + 60)])) }
            withUnsafeBytes(of: crc.littleEndian) { area.replaceSubrange((offset + 60)..<(offset + 64), with: $0) }
        }
    }
    if case .success(let header) = JournalHeader.decode(area[...]) {
        fuzzCheck(JournalHeader.decode(header.encoded()[...]) == .success(header), "header does not survive re-encoding")
        _ = header.slotOffset
    }
    _ = try? JournalHeader.newest(in: area, path: "fuzz")
    return 0
}

@_cdecl("FuzzHeaderSlots_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc: argc, argv: argv, fuzzOne)
}

@_cdecl("LLVMFuzzerInitialize")
func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    writeSeedsIfAsked({
        let a = JournalHeader(sequence: 6, capacity: 1 << 20, checkpoint: 4096, epoch: 3, closedCleanly: true, endAtClose: 8192)
        let b = JournalHeader(sequence: 7, capacity: 1 << 20, checkpoint: 8192, epoch: 4, closedCleanly: false, endAtClose: 0)
        var area = [UInt8](repeating: 0, count: 4096)
        area.replaceSubrange(Int(a.slotOffset)..<(Int(a.slotOffset) + 64), with: a.encoded())
        area.replaceSubrange(Int(b.slotOffset)..<(Int(b.slotOffset) + 64), with: b.encoded())
        return [("slot", a.encoded()), ("area", area), ("area-one-slot", Array(area[0..<2112]))]
    }())
    return 0
}
