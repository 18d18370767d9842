/// Unsigned LEB128 numbers: seven bits a byte, low first, the top bit set on
/// all but the last (the summaries' rows: ``SegmentSummary``, ``BucketHeadsSnapshot``).
enum LEB128 {
    /// Appends `value` as unsigned LEB128: seven bits a byte, low first, the top bit set on all but the last.
    static func append(_ value: UInt64, to bytes: inout [UInt8]) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    /// Reads an unsigned LEB128 number at `at` (moved past it), no later than
    /// `end`; nil if it runs past `end` or past 64 bits, or has a needless last byte.
    static func read(_ bytes: UnsafeRawBufferPointer, at: inout Int, end: Int) -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while at < end {
            let byte = bytes[at]
            at += 1
            guard shift < 63 || (shift == 63 && byte <= 1) else { return nil }
            value |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return byte == 0 && shift > 0 ? nil : value }  // one encoding per number
            shift += 7
        }
        return nil
    }
}
