import Foundation
import Testing
@testable import Ringstore

@Suite struct StreamTableTests {
    /// Inserts, then finds every stream with its state, through several growths
    /// (16 slots at first, doubled past seven eighths full: 14 streams fit 16
    /// slots, the 15th doubles them), and finds nothing for names never
    /// inserted. At seven eighths full linear probing makes long runs of
    /// occupied slots, so lookups go through collisions all the time.
    @Test(arguments: [1, 14, 15, 1_000, 20_000, 114_688])
    func findsWhatItHolds(count: Int) {
        var table = StreamTable()
        for n in 0..<count {
            let slot = table.slot(for: "stream-\(n)", inserting: StreamState(nextVersion: UInt64(n)))
            #expect(table.name(at: slot) == "stream-\(n)")
        }
        #expect(table.count == count)
        for n in 0..<count {
            let slot = table.slot(of: "stream-\(n)")
            #expect(slot != nil && table[at: slot!].nextVersion == UInt64(n))
        }
        for n in count..<(count + 100) { #expect(table.slot(of: "stream-\(n)") == nil) }
        #expect(Set(table.names) == Set((0..<count).map { "stream-\($0)" }))
    }

    /// A lookup with a hash taken beforehand (as the writer does before its
    /// lock) finds what a plain lookup finds, through growths; a hash taken
    /// with another seed does not stand for the name.
    @Test func aHashTakenBeforehandFindsTheSameSlot() {
        var table = StreamTable()
        let names = (0..<2_000).map { "s-\($0)-é" }  // not ASCII: the hash covers the NFC form
        for (n, name) in names.enumerated() { _ = table.slot(for: name, inserting: StreamState(nextVersion: UInt64(n))) }
        var other = StreamTable()
        _ = other.slot(for: "x", inserting: StreamState(nextVersion: 0))
        #expect(other.hashSeed != table.hashSeed)
        var misses = 0
        for name in names {
            let hash = StreamTable.hash(name, seed: table.hashSeed)
            table.prefetchSlot(hashed: hash)
            #expect(table.slot(of: name, hashed: hash) == table.slot(of: name))
            if table.slot(of: name, hashed: StreamTable.hash(name, seed: other.hashSeed)) == nil { misses += 1 }
        }
        #expect(misses > names.count / 2, "a foreign seed's hash found \(names.count - misses) of \(names.count)")
        #expect(table.slot(of: "absent", hashed: StreamTable.hash("absent", seed: table.hashSeed)) == nil)
    }

    /// Inserting a name that is held returns its slot and keeps its state.
    @Test func insertingAgainKeepsTheEntry() {
        var table = StreamTable()
        let first = table.slot(for: "a", inserting: StreamState(nextVersion: 5))
        let again = table.slot(for: "a", inserting: StreamState(nextVersion: 9))
        #expect(first == again && table.count == 1 && table["a"]?.nextVersion == 5)
        table["a"] = StreamState(nextVersion: 7, deleted: true)
        #expect(table["a"]?.nextVersion == 7 && table["a"]?.deleted == true && table.count == 1)
        table["b"] = StreamState(nextVersion: 1)
        #expect(table.count == 2 && table["b"]?.nextVersion == 1)
    }

    /// Names of every length around the hash's 8-byte steps, ASCII and not,
    /// against a `Dictionary` holding the same: the same answers.
    @Test func agreesWithADictionary() {
        var table = StreamTable()
        var model: [String: UInt64] = [:]
        var random = SeededRandom(seed: 7)
        let alphabet: [Character] = ["a", "b", "Z", "-", "é", "ß", "中", "🙂", "0"]
        for n in 0..<3_000 {
            let length = Int(random.next() % 40) + 1
            let name = String((0..<length).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count))] })
            if model[name] == nil {
                model[name] = UInt64(n)
                table[name] = StreamState(nextVersion: UInt64(n))
            }
        }
        #expect(table.count == model.count)
        for (name, version) in model { #expect(table[name]?.nextVersion == version) }
        let compacted = table.compactMap { name, state in state.nextVersion == model[name] ? name : nil }
        #expect(compacted.count == model.count)
    }

    /// Canonically equivalent names are one key, as `String` compares them
    /// (the writer then compares the stored name's bytes and refuses the
    /// other): precomposed and decomposed é, KELVIN SIGN and K, OHM SIGN and Ω.
    @Test(arguments: [("caf\u{E9}", "cafe\u{301}"), ("\u{212A}elvin", "Kelvin"), ("Kelvin", "\u{212A}elvin"),
                      ("\u{2126}", "\u{3A9}"), ("long-stream-name-caf\u{E9}-0123456789", "long-stream-name-cafe\u{301}-0123456789")])
    func equivalentNamesAreOneKey(stored: String, asked: String) {
        var table = StreamTable()
        for n in 0..<100 { table["filler-\(n)"] = StreamState(nextVersion: 0) }
        let slot = table.slot(for: stored, inserting: StreamState(nextVersion: 3))
        #expect(table.slot(of: asked) == slot)
        #expect(Array(table.name(at: slot).utf8) == Array(stored.utf8))
        #expect(table.slot(for: asked, inserting: StreamState(nextVersion: 0)) == slot && table.count == 101)
    }

    /// The hash covers every byte (tails included) and says whether all are ASCII.
    @Test func hashCoversEveryByte() {
        var seen = Set<UInt64>()
        for length in 1...24 {
            for position in 0..<length {
                var bytes = [UInt8](repeating: 0x61, count: length)
                bytes[position] = 0x62
                let (hash, ascii) = bytes.withUnsafeBytes { NameHash.hash($0, seed: 1) }
                #expect(ascii)
                seen.insert(hash)
            }
        }
        #expect(seen.count == (1...24).reduce(0, +))
        let (_, ascii) = Array("abcdefghé".utf8).withUnsafeBytes { NameHash.hash($0, seed: 1) }
        #expect(!ascii)
    }

    /// A state changed through its slot is changed in place: its entries array
    /// is not copied (which would make every append copy a stream's entries).
    @Test func changesInPlace() {
        var table = StreamTable()
        let slot = table.slot(for: "s", inserting: StreamState(nextVersion: 0))
        table[at: slot].entries.reserveCapacity(4)
        table[at: slot].entries.append(.init(position: 1, id: UUID()))
        let before = table[at: slot].entries.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) }
        table[at: slot].entries.append(.init(position: 2, id: UUID()))
        let after = table[at: slot].entries.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) }
        #expect(before == after, "the entries were copied")
        table[at: slot].nextVersion = 2
        #expect(table["s"]?.entries.count == 2 && table["s"]?.nextVersion == 2)
    }
}
