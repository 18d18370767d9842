import Foundation
import SystemPackage
import Testing
@testable import Ringstore

/// Split segments' compression dictionaries: the stored area, blocks
/// compressed against them, and segments whose dictionary is damaged.
@Suite struct CompressionDictionaryTests {
    /// A raw block of `versions` holding sensor-like JSON events (alike across streams, as real ones are).
    func block(_ versions: Range<UInt64>, stream: Int) -> StreamBlock.RawBlock {
        var block = StreamBlock.RawBlock()
        for v in versions {
            let json = "{\"device\":\"sensor-\(stream)\",\"seq\":\(v),\"temperature\":\(20 + Int(v) % 7).\(v % 10),"
                + "\"humidity\":\(40 + Int(v) % 13),\"status\":\"ok\",\"firmware\":\"2.4.1\"}"
            Array(json.utf8).withUnsafeBytes { d in
                Array("Reading".utf8).withUnsafeBytes { type in
                    block.add(version: v, position: 1000 * UInt64(stream) + v, id: UUID().uuid, timestampNanoseconds: Int64(v) * 1_000_000,
                              json: true, type: type, metadata: UnsafeRawBufferPointer(start: nil, count: 0), data: d)
                }
            }
        }
        return block
    }

    /// A segment folder at `root` holding, for each range of `rounds`, one entry
    /// of those versions for each of `streams` streams, synced; the segment's path.
    func writeSegment(at root: FilePath, streams: Int, rounds: [Range<UInt64>], compress: Bool) throws -> String {
        let segments = try SplitSegments(root: root, checkpoint: 0)
        for versions in rounds {
            try segments.append((0..<streams).map { .init(stream: UInt32($0), blocks: [block(versions, stream: $0)]) }, compress: compress)
        }
        try segments.sync()
        return root.appending("split").appending(SplitSegment.fileName(of: 1)).string
    }

    func dictionary() throws -> CompressionDictionary {
        try #require(CompressionDictionary.sample(of: (0..<40).map { block(0..<5, stream: $0) }))
    }

    @Test func theAreaReadsBackAndOneDamagedCopyIsNamedButLosesNothing() throws {
        let dictionary = try dictionary()
        #expect(dictionary.bytes.count == CompressionDictionary.maxBytes, "40 streams' events fill the sample")
        let area = CompressionDictionary.encodeArea(dictionary)
        #expect(area.count == 2 * CompressionDictionary.copyLength(ofBytes: dictionary.bytes.count))
        let copy = area.count / 2
        func read(_ bytes: [UInt8]) -> CompressionDictionary.AreaReading { bytes.withUnsafeBytes { CompressionDictionary.parseArea($0) } }
        let intact = read(area)
        #expect(intact.damagedCopies.isEmpty)
        #expect(intact.dictionary.map { Array(UnsafeRawBufferPointer($0.bytes)) } == Array(UnsafeRawBufferPointer(dictionary.bytes)))
        for (flipped, damaged) in [(100, [0]), (copy + 100, [copy]), (2, [0]), (copy + 5, [copy]), (copy - 1, [0])] {
            var bytes = area
            bytes[flipped] ^= 0x10
            let reading = read(bytes)
            #expect(reading.damagedCopies == damaged, "flipped byte \(flipped)")
            #expect(reading.dictionary.map { Array(UnsafeRawBufferPointer($0.bytes)) } == Array(UnsafeRawBufferPointer(dictionary.bytes)))
        }
        var both = area
        both[50] ^= 1
        both[copy + 50] ^= 1
        #expect(read(both).damagedCopies.count == 2 && read(both).dictionary == nil)
        let none = CompressionDictionary.encodeArea(nil)
        #expect(none.count == 16)
        #expect(read(none).dictionary == nil && read(none).damagedCopies.isEmpty)
        #expect(read([UInt8](repeating: 0, count: 16)).damagedCopies.count == 2, "zeros are no copy")
    }

    /// A part of a block (`DecodeExtent`), with and without the dictionary:
    /// the entries wholly inside the part, the same as the whole block's
    /// first ones; a part short of the version asked for decodes whole; a
    /// part reaching the end is the whole block.
    @Test func aPartOfABlockDecodesItsFirstEntries() throws {
        let dictionary = try dictionary()
        let raw = block(100..<140, stream: 5)
        for against in [nil, dictionary] {
            var encoded: [UInt8] = []
            StreamBlock.encode(raw, compress: true, dictionary: against, into: &encoded)
            let whole = try StreamBlock.decoded(from: encoded[...], dictionary: against).get()
            #expect(whole.count == 40 && whole.raw == raw.raw)
            let entry = raw.raw.count / 40
            for (bytes, version) in [(entry * 5 + entry / 2, UInt64(101)), (entry + 10, 100), (entry * 39, 120)] {
                let part = try StreamBlock.decoded(from: encoded[...], dictionary: against,
                                                   extent: .init(version: version) { _ in bytes }).get()
                #expect(part.count < 40 && part.firstVersion == 100, "\(bytes) bytes")
                #expect(part.firstVersion + UInt64(part.count) > version, "holds the version asked for")
                #expect(part.events(stream: "s") == Array(whole.events(stream: "s").prefix(part.count)))
                #expect(part.raw.count >= Int(part.offsets.last!))
            }
            // Short of the version asked for (here not even one entry): the whole block.
            #expect(try StreamBlock.decoded(from: encoded[...], dictionary: against, extent: .init(version: 100) { _ in 1 }).get().count == 40)
            let short = try StreamBlock.decoded(from: encoded[...], dictionary: against, extent: .init(version: 130) { _ in entry * 3 }).get()
            #expect(short.count == 40)
            let beyond = try StreamBlock.decoded(from: encoded[...], dictionary: against, extent: .init(version: 100) { _ in .max }).get()
            #expect(beyond.count == 40 && beyond.raw == whole.raw)
        }
        // A damaged entry inside the part is still named as such.
        var damaged = raw
        damaged.raw[0] ^= 0x40  // the first entry's length
        var encoded: [UInt8] = []
        StreamBlock.encode(damaged, compress: true, into: &encoded)
        #expect(throws: StreamBlock.DecodeError.badEntry(0)) {
            try StreamBlock.decoded(from: encoded[...], extent: .init(version: 100) { _ in 2000 }).get()
        }
    }

    @Test func smallBlocksAreCompressedAgainstTheDictionaryAndDecodeOnlyWithIt() throws {
        let dictionary = try dictionary()
        let raw = block(100..<106, stream: 999)
        var alone: [UInt8] = []
        StreamBlock.encode(raw, compress: true, into: &alone)
        var against: [UInt8] = []
        StreamBlock.encode(raw, compress: true, dictionary: dictionary, into: &against)
        let header = try StreamBlock.parseHeader(against).get()
        #expect(header.dictionary && header.compressed)
        #expect(try !StreamBlock.parseHeader(alone).get().dictionary)
        #expect(against.count < alone.count, "\(against.count) bytes against \(alone.count) without the dictionary")
        let expected = try StreamBlock.decode(alone, stream: "s").get()
        #expect(try StreamBlock.decode(against, stream: "s", dictionary: dictionary).get() == expected)
        #expect(throws: StreamBlock.DecodeError.dictionaryMissing) { try StreamBlock.decode(against, stream: "s").get() }
        #expect(throws: StreamBlock.DecodeError.dictionaryMissing) { try StreamBlock.decoded(from: against[...]).get() }
        #expect(throws: StreamBlock.DecodeError.dictionaryMissing) { try StreamBlock.rawBlock(from: against).get() }
        #expect(try StreamBlock.rawBlock(from: against, dictionary: dictionary).get().raw == raw.raw)
        let decoded = try StreamBlock.decoded(from: against[...], dictionary: dictionary).get()
        #expect(decoded.events(stream: "s") == expected)
        // Another dictionary decodes to other bytes, or not at all: never passes as this one's.
        let other = try #require(CompressionDictionary.sample(of: [block(0..<80, stream: 7)]))
        #expect(throws: (any Error).self) {
            let events = try StreamBlock.decode(against, stream: "s", dictionary: other).get()
            if events != expected { throw StreamBlock.DecodeError.decompressionFailed }
        }
        // The block names its dictionary (header bytes 44-47), so another one is refused
        // outright; a block of a segment written before it named one (0) is still read.
        #expect(header.dictionaryID == dictionary.id && dictionary.id != 0 && other.id != dictionary.id)
        #expect(throws: StreamBlock.DecodeError.wrongDictionary) { try StreamBlock.decode(against, stream: "s", dictionary: other).get() }
        #expect(throws: StreamBlock.DecodeError.wrongDictionary) { try StreamBlock.decoded(from: against[...], dictionary: other).get() }
        #expect(throws: StreamBlock.DecodeError.wrongDictionary) {
            try StreamBlock.decoded(from: against[...], dictionary: other, extent: .init(version: 100) { _ in 100 }).get()
        }
        var unnamed = against
        for i in 44..<48 { unnamed[i] = 0 }
        #expect(try StreamBlock.decode(unnamed, stream: "s", dictionary: dictionary).get() == expected)
        var plainHeader: [UInt8] = []
        StreamBlock.encode(raw, compress: true, into: &plainHeader)
        #expect(try StreamBlock.parseHeader(plainHeader).get().dictionaryID == 0)
        // Its states freed (a segment no longer written to), it compresses the same again.
        dictionary.releaseCompressionStates()
        var again: [UInt8] = []
        StreamBlock.encode(raw, compress: true, dictionary: dictionary, into: &again)
        #expect(again.count == against.count)
        #expect(try StreamBlock.decode(again, stream: "s", dictionary: dictionary).get() == expected)
        // A stream file's block never claims a dictionary the reader does not pass.
        var flagged = alone
        flagged[4] = 2  // the dictionary flag without the compressed one
        #expect(throws: StreamBlock.DecodeError.self) { try StreamBlock.parseHeader(flagged).get() }
    }

    /// Decoding copies the dictionary in front of a per-thread output buffer
    /// (`DictionaryDecodeScratch`) and keeps it there: switching between
    /// dictionaries, and a new dictionary made where a freed one was, must
    /// still decode each block against its own dictionary.
    @Test func blocksDecodeAgainstTheirOwnDictionaryWhenDictionariesAlternateOnOneThread() throws {
        func sampled(_ streams: Range<Int>, from first: UInt64) throws -> CompressionDictionary {
            try #require(CompressionDictionary.sample(of: streams.map { block(first..<(first + 5), stream: $0) }))
        }
        func encoded(_ raw: StreamBlock.RawBlock, _ dictionary: CompressionDictionary) -> [UInt8] {
            var bytes: [UInt8] = []
            StreamBlock.encode(raw, compress: true, dictionary: dictionary, into: &bytes)
            return bytes
        }
        let first = try sampled(0..<40, from: 0), second = try sampled(500..<540, from: 7_000)
        let raws = [block(10..<30, stream: 3), block(7_010..<7_030, stream: 510)]
        let blocks = [encoded(raws[0], first), encoded(raws[1], second)]
        for round in 0..<6 {
            let i = round % 2
            let dictionary = i == 0 ? first : second
            let whole = try StreamBlock.decoded(from: blocks[i][...], dictionary: dictionary).get()
            #expect(whole.raw == raws[i].raw, "round \(round)")
            let part = try StreamBlock.decoded(from: blocks[i][...], dictionary: dictionary,
                                               extent: .init(version: 0) { _ in raws[i].raw.count / 3 }).get()
            #expect(part.count < 20 && part.raw == Array(raws[i].raw.prefix(part.raw.count)), "round \(round)")
        }
        // The other segment's dictionary does not give the block back.
        let crossed = StreamBlock.decoded(from: blocks[0][...], dictionary: second)
        #expect((try? crossed.get().raw) != raws[0].raw)

        // A dictionary made after another was freed (perhaps at its address) is not taken for it.
        for n in 0..<8 {
            let made = try sampled((100 * n)..<(100 * n + 40), from: UInt64(1_000 * n))
            let raw = block(UInt64(1_000 * n + 3)..<UInt64(1_000 * n + 20), stream: 100 * n + 1)
            #expect(try StreamBlock.decoded(from: encoded(raw, made)[...], dictionary: made).get().raw == raw.raw, "dictionary \(n)")
        }
    }

    /// Every bucket file holds its own copy of the store's dictionary, and
    /// `$all` decodes entries of many such files in turn: copies with the same
    /// bytes share one serial, so the thread's scratch keeps its dictionary
    /// rather than copying the same bytes in again, while a dictionary of other
    /// bytes, even under the same id (a CRC32C collision, forged here), never
    /// passes for it.
    @Test func copiesOfOneDictionaryShareASerialAndOtherBytesNeverDo() throws {
        let original = try dictionary()
        let bytes = Array(UnsafeRawBufferPointer(original.bytes))
        let copy = bytes.withUnsafeBytes { CompressionDictionary($0) }
        #expect(copy.serial == original.serial && copy.id == original.id)

        // Same length and same CRC32C, other bytes: the last four bytes are
        // chosen by solving the CRC's linear equations over GF(2).
        var forged = bytes
        forged[100] ^= 0x5A
        forged = Self.withChecksum(of: bytes, patchingLastFourBytesOf: forged)
        #expect(forged != bytes)
        let impostor = forged.withUnsafeBytes { CompressionDictionary($0) }
        #expect(impostor.id == original.id, "the forged bytes collide")
        #expect(impostor.serial != original.serial)

        // Decoding through the copy, the impostor and the original in turn on one thread gives each block back.
        let raw = block(10..<30, stream: 3)
        func encoded(_ dictionary: CompressionDictionary) -> [UInt8] {
            var bytes: [UInt8] = []
            StreamBlock.encode(raw, compress: true, dictionary: dictionary, into: &bytes)
            return bytes
        }
        let blocks = [encoded(original), encoded(impostor)]
        for (round, (block, dictionary)) in [(0, copy), (1, impostor), (0, original), (1, impostor), (0, copy)].enumerated() {
            #expect(try StreamBlock.decoded(from: blocks[block][...], dictionary: dictionary).get().raw == raw.raw, "round \(round)")
        }
    }

    /// `patched` with its last four bytes changed so that its CRC32C equals that of `target` (both of one length).
    static func withChecksum(of target: [UInt8], patchingLastFourBytesOf patched: [UInt8]) -> [UInt8] {
        func crc(_ bytes: [UInt8]) -> UInt32 { bytes.withUnsafeBytes { CRC32C.checksum($0) } }
        var result = patched
        let tail = result.count - 4
        result.replaceSubrange(tail..., with: [0, 0, 0, 0])
        let base = crc(result)
        // The checksum's change from flipping each of the 32 bits (linear, for messages of one length).
        var columns: [(change: UInt32, bits: UInt32)] = (0..<32).map { bit in
            var flipped = result
            flipped[tail + bit / 8] ^= UInt8(1 << (bit % 8))
            return (crc(flipped) ^ base, UInt32(1) << UInt32(bit))
        }
        // Gaussian elimination: which flips together make up the change wanted.
        var wanted = crc(target) ^ base, chosen: UInt32 = 0
        for row in 0..<32 {
            let mask = UInt32(1) << UInt32(row)
            guard let pivot = columns.indices.first(where: { columns[$0].change & mask != 0 && columns[$0].change & (mask - 1) == 0 }) else { continue }
            let (change, bits) = columns.remove(at: pivot)
            for i in columns.indices where columns[i].change & mask != 0 {
                columns[i].change ^= change
                columns[i].bits ^= bits
            }
            if wanted & mask != 0 {
                wanted ^= change
                chosen ^= bits
            }
        }
        precondition(wanted == 0, "the 32 bits span every change")
        for bit in 0..<32 where chosen & (UInt32(1) << UInt32(bit)) != 0 { result[tail + bit / 8] ^= UInt8(1 << (bit % 8)) }
        return result
    }

    /// `compress` copies each source behind its own copy of the dictionary
    /// (LZ4's prefix loop) when it fits the room there, and compresses it
    /// where it lies otherwise: every size, in any order (a shorter source
    /// after a longer one leaves the longer one's bytes in the room), must
    /// decode back against the dictionary alone.
    @Test func everySourceSizeRoundTripsThroughEitherLoop() throws {
        let dictionary = try dictionary()
        var events = StreamBlock.RawBlock()
        var version: UInt64 = 0
        while events.raw.count < CompressionDictionary.entryLimit + 4_096 {
            events.append(block(version..<(version + 10), stream: Int(version) % 97))
            version += 10
        }
        let limit = CompressionDictionary.entryLimit
        let sizes = [1, 7, 64, 1_000, 4_096, limit - 1, limit, limit + 1, limit + 4_000, 300, 2, limit, 5_000, 1]
        for size in sizes {
            let source = Array(events.raw.prefix(size))
            var stored = [UInt8](repeating: 0, count: size + size / 255 + 16)
            let count = source.withUnsafeBytes { s in stored.withUnsafeMutableBytes { dictionary.compress(s, into: $0) } }
            #expect(count > 0, "\(size) bytes")
            var back = [UInt8](repeating: 0, count: size)
            let decoded = stored.prefix(count).withUnsafeBytes { s in back.withUnsafeMutableBytes { dictionary.decompress(s, into: $0) } }
            #expect(Int(decoded) == size && back == source, "\(size) bytes")
        }
    }

    @Test func largeBlocksAreCompressedOnTheirOwn() throws {
        let dictionary = try dictionary()
        var large = StreamBlock.RawBlock()
        var version: UInt64 = 0
        while large.raw.count < CompressionDictionary.entryLimit {
            large.append(block(version..<(version + 10), stream: 3))
            version += 10
        }
        var bytes: [UInt8] = []
        StreamBlock.encode(large, compress: true, dictionary: dictionary, into: &bytes)
        let header = try StreamBlock.parseHeader(bytes).get()
        #expect(header.compressed && !header.dictionary, "the mover may copy it whole into a stream file")
    }

    @Test func aSegmentKeepsItsDictionaryAcrossReopeningAndSurvivesOneDamagedCopy() throws {
        let dir = TemporaryDirectory()
        let root = FilePath(dir.path)
        let path = try writeSegment(at: root, streams: 30, rounds: [0..<4, 4..<6], compress: true)
        func versions(_ segments: SplitSegments, _ stream: UInt32) throws -> [UInt64] {
            try segments.entries(of: stream, from: 0).flatMap {
                try StreamBlock.decode($0.block, stream: "s", dictionary: $0.dictionary).get().map(\.version)
            }
        }
        let first = try SplitSegment.firstEntryOffset(of: path)
        let copy = (Int(first) - SplitSegment.headerSize) / 2
        #expect(copy == CompressionDictionary.copyLength(ofBytes: CompressionDictionary.maxBytes))
        do {
            let reopened = try SplitSegments(root: root, checkpoint: .max)
            let entries = try reopened.entries(of: 17, from: 0)
            #expect(entries.allSatisfy { $0.header.dictionary }, "small entries use the dictionary")
            #expect(try versions(reopened, 17) == Array(0..<6))
        }
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        data[SplitSegment.headerSize + 8 + 77] ^= 0x04
        try data.write(to: URL(fileURLWithPath: path))
        do {
            let reopened = try SplitSegments(root: root, checkpoint: .max)
            #expect(try versions(reopened, 29) == Array(0..<6), "the second copy serves")
        }
        data[SplitSegment.headerSize + copy + 8 + 77] ^= 0x04
        try data.write(to: URL(fileURLWithPath: path))
        let reopened = try SplitSegments(root: root, checkpoint: .max)
        #expect(reopened.nextVersion(of: 29) == 6, "the entries are still walked")
        let entries = try reopened.entries(of: 29, from: 0)
        #expect(entries.count == 2 && entries.allSatisfy { $0.dictionary == nil })
        #expect(throws: StreamBlock.DecodeError.dictionaryMissing) {
            try StreamBlock.decode(entries[0].block, stream: "s", dictionary: entries[0].dictionary).get()
        }
    }

    /// Segments written before dictionaries (format 1: entries right after a
    /// 24-byte header) still open and read.
    @Test func aSegmentOfTheFirstFormatStillOpens() throws {
        let dir = TemporaryDirectory()
        let root = FilePath(dir.path)
        // One entry per stream: their links name no earlier entry, so moving them keeps them valid.
        let path = try writeSegment(at: root, streams: 5, rounds: [0..<3], compress: false)
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let first = Int(try SplitSegment.firstEntryOffset(of: path))
        var old = Array(data[0..<12])
        old += [1, 0, 0, 0]  // segment number 1
        old.replaceSubrange(8..<12, with: [1, 0, 0, 0])  // format version 1
        LittleEndian.append(CRC32C.checksum(old), to: &old)
        old += [0, 0, 0, 0]
        old += data[first...]
        try Data(old).write(to: URL(fileURLWithPath: path))
        #expect(try SplitSegment.firstEntryOffset(of: path) == UInt64(SplitSegment.headerSize))
        let reopened = try SplitSegments(root: root, checkpoint: .max)
        for stream in UInt32(0)..<5 {
            let entries = try reopened.entries(of: stream, from: 0)
            #expect(try entries.flatMap { try StreamBlock.decode($0.block, stream: "s").get().map(\.version) } == [0, 1, 2])
        }
    }

    /// Through the public API: reads of a stream whose entries need a lost
    /// dictionary fail naming the segment, and `verify` names both copies.
    @Test func aLostDictionaryIsReportedByReadsAndVerify() async throws {
        let dir = TemporaryDirectory()
        do {
            let store = try await EventStore.open(at: dir.path, configuration: .testing())
            for round in 0..<3 {
                for stream in 0..<20 {
                    _ = try await store.append(to: "sensor-\(stream)", events: [
                        EventData(type: "Reading", json: "{\"device\":\"sensor-\(stream)\",\"round\":\(round),\"status\":\"ok\",\"firmware\":\"2.4.1\"}"),
                    ])
                }
            }
            try await store.close()
        }
        let path = dir.path + "/split/" + SplitSegment.fileName(of: 1)
        let first = try SplitSegment.firstEntryOffset(of: path)
        let copy = (Int(first) - SplitSegment.headerSize) / 2
        try #require(copy > 8, "the segment has a dictionary")
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        data[SplitSegment.headerSize + 9] ^= 0x01
        data[SplitSegment.headerSize + copy + 9] ^= 0x01
        try data.write(to: URL(fileURLWithPath: path))

        let check = try MaintenanceSession(directory: dir.path)
        let report = check.verify()
        check.close()
        let named = report.problems.filter { $0.file == "split/" + SplitSegment.fileName(of: 1) }
        #expect(Set(named.compactMap(\.offset)).isSuperset(of: [UInt64(SplitSegment.headerSize), UInt64(SplitSegment.headerSize + copy)]),
                "\(report.findings)")
        let (_, dump, _) = try AdminFixture.run(["dump", dir.path])
        #expect(dump.contains("segment file=split/00000001.seg entriesStart=\(first) dictionaryBytes=0 invalid=\"damaged dictionary copies at offsets 24, \(24 + copy)\""),
                "\(dump.prefix(2000))")

        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        var failures = 0
        for stream in 0..<20 {
            do {
                _ = try await store.read(stream: "sensor-\(stream)").collect()
            } catch let error as RingstoreError {
                #expect(error.code == .corruptData && error.path == path, "\(error)")
                failures += 1
            }
        }
        #expect(failures > 0, "some entries were compressed against the dictionary")
        try await store.close()
    }
}
