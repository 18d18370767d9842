import CRingstoreSupport
import Testing
@_spi(Benchmarks) @testable import Ringstore

@Suite struct CRC32CTests {
    /// Known CRC32C values (RFC 3720 appendix B.4 and the common "123456789" check value).
    static let vectors: [(bytes: [UInt8], crc: UInt32)] = [
        (Array("123456789".utf8), 0xE306_9283),
        ([UInt8](repeating: 0, count: 32), 0x8A91_36AA),
        ([UInt8](repeating: 0xFF, count: 32), 0x62A8_AB43),
        (Array(0..<32), 0x46DD_794E),
        (Array((0..<32).reversed()), 0x113F_DB5C),
        ([], 0),
    ]

    /// Through every entry point: `CRC32C`, the benchmarks' `Codecs.crc32c`, and the C functions.
    @Test func knownVectors() {
        for (bytes, expected) in Self.vectors {
            #expect(CRC32C.checksum(bytes) == expected)
            #expect(bytes.withUnsafeBytes { Codecs.crc32c($0) } == expected)
            bytes.withUnsafeBytes { buffer in
                let base = buffer.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!
                #expect(rs_crc32c_portable(0, base, buffer.count) == expected)
                if rs_crc32c_hardware_available() != 0 {
                    #expect(rs_crc32c_hardware(0, base, buffer.count) == expected)
                }
            }
        }
    }

    @Test func hardwareAndPortableAgreeOnEveryLengthAndAlignment() {
        var generator = SeededRandom(seed: 42)
        let bytes = (0..<40_000).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        bytes.withUnsafeBytes { buffer in
            for offset in 0..<9 {
                // Around the three-lane thresholds (192 bytes and 3 KiB) and their multiples.
                for length in [0, 1, 3, 7, 8, 9, 15, 16, 17, 63, 64, 65, 191, 192, 193, 199, 255, 383, 384, 385, 1000,
                               3071, 3072, 3073, 3264, 4000, 6143, 6144, 6145, 6337, 39_000] {
                    let base = buffer.baseAddress! + offset
                    let portable = rs_crc32c_portable(0x1234_5678, base, length)
                    let dispatched = rs_crc32c(0x1234_5678, base, length)
                    #expect(portable == dispatched, "offset \(offset) length \(length)")
                    if rs_crc32c_hardware_available() != 0 {
                        #expect(rs_crc32c_hardware(0x1234_5678, base, length) == portable)
                    }
                }
            }
        }
    }

    @Test func continuingEqualsWhole() {
        let bytes = Array("The quick brown fox jumps over the lazy dog".utf8)
        let whole = CRC32C.checksum(bytes)
        for split in 0...bytes.count {
            let first = CRC32C.checksum(Array(bytes[..<split]))
            #expect(CRC32C.checksum(Array(bytes[split...]), continuing: first) == whole)
        }
    }
}
