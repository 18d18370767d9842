import CLZ4
import Testing
@testable import Ringstore

/// The LZ4 compressor's two paths (kept state for small sources, a cleared
/// state from ``LZ4Compressor/clearedStateFrom`` bytes on) make ordinary LZ4
/// blocks that decode on their own.
@Suite struct LZ4CompressorTests {
    /// Sensor-like JSON: compressible, as events are.
    func source(count: Int, seed: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        var i = seed
        while bytes.count < count {
            bytes += Array("{\"seq\":\(i),\"temperature\":\(20 + i % 17).\(i % 10),\"status\":\"\(["ok", "warn", "open"][i % 3])\"}".utf8)
            i += 1
        }
        return Array(bytes.prefix(count))
    }

    func compress(_ source: [UInt8], acceleration: Int32 = 1) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: Int(LZ4_compressBound(Int32(source.count))))
        let size = source.withUnsafeBytes { s in
            output.withUnsafeMutableBytes { LZ4Compressor.compress(s, into: $0, acceleration: acceleration) }
        }
        return Array(output.prefix(size))
    }

    func decompress(_ stored: [UInt8], rawCount: Int) -> [UInt8]? {
        var raw = [UInt8](repeating: 0, count: rawCount)
        let size = stored.withUnsafeBytes { s in
            raw.withUnsafeMutableBytes { r in
                LZ4_decompress_safe(s.baseAddress!.assumingMemoryBound(to: CChar.self), r.baseAddress!.assumingMemoryBound(to: CChar.self),
                                    Int32(s.count), Int32(r.count))
            }
        }
        return size == rawCount ? raw : nil
    }

    @Test(arguments: [300, LZ4Compressor.clearedStateFrom - 1, LZ4Compressor.clearedStateFrom, 20_000, 65_536, 70_000])
    func blocksOnEitherSideOfTheThresholdRoundTrip(count: Int) throws {
        let input = source(count: count, seed: count)
        let stored = compress(input)
        #expect(!stored.isEmpty && stored.count < input.count / 2)
        #expect(decompress(stored, rawCount: count) == input)
        #expect(decompress(compress(input, acceleration: 4), rawCount: count) == input)
    }

    /// Small and large sources in turn on one thread: each block still decodes
    /// alone, and a large one's bytes do not depend on what came before it (its
    /// state is cleared first), so a rewrite makes the same bytes whichever
    /// thread compresses it.
    @Test func alternatingSizesShareTheThreadsStateSafely() throws {
        let large = source(count: 30_000, seed: 7)
        let first = compress(large)
        for round in 0..<4 {
            let small = source(count: 200 + round * 100, seed: round)
            #expect(decompress(compress(small), rawCount: small.count) == small)
            let again = compress(large)
            #expect(again == first)
            #expect(decompress(again, rawCount: large.count) == large)
        }
    }
}
