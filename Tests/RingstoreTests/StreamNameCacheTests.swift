import Foundation
import Testing
@testable import Ringstore

@Suite struct StreamNameCacheTests {
    static func lookup(_ cache: StreamNameCache, _ name: String) -> (number: UInt32, name: String)? {
        Array(name.utf8).withUnsafeBytes { cache.lookup($0) }
    }

    /// Thousands of names (short, exactly eight bytes, long, non-ASCII), through
    /// several growths: each is found under its own number, by its bytes only.
    @Test func findsEveryNameByItsBytes() {
        var cache = StreamNameCache()
        var names: [String] = []
        for n in 0..<5_000 {
            switch n % 4 {
            case 0: names.append("s-\(n)")
            case 1: names.append(String(format: "%08d", n))  // the hash's eight-byte step, no tail
            case 2: names.append("a-much-longer-stream-name-with-a-tail-\(n)")
            default: names.append("caf\u{E9}-\(n)")
            }
        }
        for (number, name) in names.enumerated() { cache.insert(number: UInt32(number), name: name) }
        #expect(cache.count == names.count)
        for (number, name) in names.enumerated() {
            let found = Self.lookup(cache, name)
            #expect(found?.number == UInt32(number))
            #expect(found.map { $0.name.utf8.elementsEqual(name.utf8) } == true)
        }
        #expect(Self.lookup(cache, "s-5000") == nil)
        #expect(Self.lookup(cache, "") == nil)
        #expect(Self.lookup(cache, "s-") == nil)
    }

    /// Canonically equivalent names are different bytes, so different streams:
    /// the cache never answers one with the other (`String` equality would).
    @Test func equivalentNamesAreNotTheSameEntry() {
        var cache = StreamNameCache()
        cache.insert(number: 0, name: "caf\u{E9}")
        #expect(Self.lookup(cache, "cafe\u{301}") == nil)
        #expect(Self.lookup(cache, "caf\u{E9}")?.number == 0)
        cache.insert(number: 1, name: "cafe\u{301}")
        #expect(Self.lookup(cache, "cafe\u{301}")?.number == 1)
        #expect(Self.lookup(cache, "caf\u{E9}")?.number == 0)
    }

    /// Numbers arrive in any order and far apart; a name inserted twice keeps
    /// its first number (the catalog gives a name's bytes one number, which never changes).
    @Test func sparseNumbersAndRepeatedNames() {
        var cache = StreamNameCache(seed: 42)
        cache.insert(number: 900, name: "late")
        cache.insert(number: 3, name: "early")
        cache.insert(number: 5, name: "early")  // ignored: "early" is cached
        #expect(cache.count == 2)
        #expect(Self.lookup(cache, "late")?.number == 900)
        #expect(Self.lookup(cache, "early")?.number == 3)
        #expect(Self.lookup(cache, "earl") == nil)
    }

    /// The hash reads every byte: names differing in one byte anywhere
    /// (in an eight-byte word or in the tail) or only in length hash apart.
    @Test func hashDependsOnEveryByteAndTheLength() {
        let base = Array("0123456789abcdefXYZ".utf8)
        let h = base.withUnsafeBytes { NameHash.hash($0, seed: 7).hash }
        for i in base.indices {
            var changed = base
            changed[i] ^= 1
            #expect(changed.withUnsafeBytes { NameHash.hash($0, seed: 7).hash } != h)
        }
        let zeros8 = [UInt8](repeating: 0, count: 8)
        let zeros9 = [UInt8](repeating: 0, count: 9)
        #expect(zeros8.withUnsafeBytes { NameHash.hash($0, seed: 7).hash }
                != zeros9.withUnsafeBytes { NameHash.hash($0, seed: 7).hash })
    }
}
