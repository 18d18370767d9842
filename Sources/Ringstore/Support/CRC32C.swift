import CRingstoreSupport

/// CRC32C (Castagnoli) checksums, hardware-accelerated where the processor allows.
enum CRC32C {
    /// The checksum of `bytes`, continuing from `crc` (0 for a fresh checksum).
    @inline(__always)
    static func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return crc }
        return rs_crc32c(crc, base, bytes.count)
    }

    /// The checksum of `count` bytes at `pointer`, continuing from `crc`.
    @inline(__always)
    static func checksum(_ pointer: UnsafeRawPointer, count: Int, continuing crc: UInt32 = 0) -> UInt32 {
        rs_crc32c(crc, pointer, count)
    }

    static func checksum(_ bytes: [UInt8], continuing crc: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0, continuing: crc) }
    }
}
