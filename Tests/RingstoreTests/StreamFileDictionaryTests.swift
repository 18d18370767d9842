import Foundation
import SystemPackage
import Testing
@testable import Ringstore

/// `compact` of a store large enough writes its stream files in small blocks
/// compressed against a dictionary of the store's own events
/// (`streams/dictionary`): reads, appends, `verify` and a second compaction
/// work with it, and damage to it is named without losing what one intact
/// copy still gives.
@Suite struct StreamFileDictionaryTests {
    static let streams = 600
    static let eventsPerStream = 40
    /// Events of the one stream dense enough (past 1/512 of the store's) to keep large blocks.
    static let denseEvents = 2_000

    /// Sensor-like JSON of about 300 bytes: alike across streams, as real events are.
    static func event(_ stream: Int, _ i: Int) -> EventData {
        EventData(type: "Reading", json: "{\"device\":\"sensor-\(stream)\",\"seq\":\(i),\"temperature\":\(18 + (i * 7 + stream) % 11).\(i % 10),"
            + "\"humidity\":\(35 + (i * 3 + stream) % 40),\"pressure\":\(990 + (i + stream) % 30),\"battery\":\(100 - i % 50),"
            + "\"status\":\"\(i % 9 == 0 ? "warn" : "ok")\",\"note\":\"reading \(i) of device \(stream) at site \(stream % 7), line \(i % 13)\"}")
    }

    /// About 5.5 MiB of raw events (past ``StoreCompactor/dictionaryFromRawBytes``) over
    /// 600 streams (past ``CompactionWriter/denseStreamShare``) and one dense stream,
    /// closed cleanly: its compaction writes a dictionary.
    static func build(at path: String) async throws {
        let store = try await EventStore.open(at: path, configuration: .filePerStream())
        for round in 0..<(eventsPerStream / 20) {
            for stream in 0..<streams {
                _ = try await store.append(to: "sensor-\(stream)", events: (0..<20).map { event(stream, round * 20 + $0) })
            }
            for batch in 0..<(denseEvents / 200) {
                _ = try await store.append(to: "dense", events: (0..<100).map { event(9_999, round * denseEvents / 2 + batch * 100 + $0) })
            }
        }
        try await store.close()
    }

    /// ``build(at:)``, then compacted.
    static func buildCompacted(at path: String) async throws -> CompactSummary {
        try await build(at: path)
        let session = try MaintenanceSession(directory: path, configuration: .filePerStream())
        defer { session.close() }
        return try await session.compact(options: CompactOptions())
    }

    /// Compaction options that give any store a dictionary and every stream but
    /// one holding all the events small blocks against it (tests of small stores).
    static var everyStreamGetsTheDictionary: CompactOptions {
        var options = CompactOptions()
        options.dictionaryPolicy = DictionaryPolicy(fromRawBytes: 0, fromStreams: 0, denseShare: 1)
        return options
    }

    /// The admin tests' small store at `path`, compacted with a dictionary for every stream.
    static func buildSmallCompacted(at path: String) async throws {
        try await AdminFixture.build(at: path)
        let session = try MaintenanceSession(directory: path, configuration: .filePerStream())
        defer { session.close() }
        _ = try await session.compact(options: everyStreamGetsTheDictionary)
    }

    static func blockHeaders(of path: String, stream: String) throws -> [StreamBlock.Header] {
        try AdminBlockReuseTests.blocks(of: path + "/" + StreamNaming.relativePath(stream).string, stream: stream).map {
            try StreamBlock.parseHeader($0.bytes).get()
        }
    }

    @Test func compactionWritesSmallBlocksAgainstTheStoresDictionary() async throws {
        let dir = TemporaryDirectory()
        let path = dir.child("store")
        let plain = dir.child("plain")
        let store = try await EventStore.open(at: plain, configuration: .filePerStream())
        _ = try await store.append(to: "x", events: [Self.event(0, 0)])
        try await store.close()
        let small = try MaintenanceSession(directory: plain, configuration: .filePerStream())
        _ = try await small.compact(options: CompactOptions())
        small.close()
        #expect(!FileManager.default.fileExists(atPath: plain + "/streams/dictionary"), "a small store gets no dictionary")

        let summary = try await Self.buildCompacted(at: path)
        let reading = try #require(try StreamFileDictionary.read(in: FilePath(path)))
        #expect(reading.damage.isEmpty)
        let dictionary = try #require(reading.dictionary)
        #expect(dictionary.bytes.count == CompressionDictionary.maxBytes)
        let headers = try Self.blockHeaders(of: path, stream: "sensor-7")
        #expect(headers.count > 1, "\(headers.count) blocks")
        for header in headers {
            #expect(header.dictionary && header.dictionaryID == dictionary.id)
            #expect(header.rawLength <= CompactionWriter.dictionaryBlockBytes)
        }
        // A stream with a large share of the events keeps large blocks, without the dictionary.
        let dense = try Self.blockHeaders(of: path, stream: "dense")
        #expect(dense.allSatisfy { !$0.dictionary } && dense.contains { $0.rawLength > 4 * CompactionWriter.dictionaryBlockBytes },
                "\(dense.map(\.rawLength))")
        try AdminFixture.expectVerifiesClean(at: path, "after the compaction")

        // Reads (`$all`, forwards and backwards, from inside a block) and appends go on.
        let before = try await AdminFixture.visible(at: path)
        #expect(before.count == 2 * (Self.streams * Self.eventsPerStream + Self.denseEvents))
        let reopened = try await EventStore.open(at: path, configuration: .filePerStream())
        var backwards: [UInt64] = []
        for try await event in reopened.read(stream: "sensor-7", from: .version(30), direction: .backwards, maxCount: 20) {
            backwards.append(event.version)
            #expect(String(decoding: event.data, as: UTF8.self) == String(decoding: Self.event(7, Int(event.version)).data, as: UTF8.self))
        }
        #expect(backwards == Array((11...30).reversed()))
        _ = try await reopened.append(to: "sensor-7", expectedVersion: .exact(UInt64(Self.eventsPerStream - 1)),
                                      events: [Self.event(7, Self.eventsPerStream)])
        try await reopened.close()
        try AdminFixture.expectVerifiesClean(at: path, "after an append")

        // Again: the same first events, so the same dictionary, and its full blocks are copied as they
        // are (each sensor stream's two full blocks of three; its last, part-filled, is built again).
        let file = try Data(contentsOf: URL(fileURLWithPath: path + "/streams/dictionary"))
        let again = try MaintenanceSession(directory: path, configuration: .filePerStream())
        let second = try await again.compact(options: CompactOptions())
        again.close()
        #expect(try Data(contentsOf: URL(fileURLWithPath: path + "/streams/dictionary")) == file)
        #expect(second.blocksReused * 10 >= summary.blocksAfter * 6, "\(second.blocksReused) of \(summary.blocksAfter) blocks copied")
        try AdminFixture.expectVerifiesClean(at: path, "after the second compaction")
        let after = try await AdminFixture.visible(at: path)
        #expect(after.count == before.count + 2)
        #expect(Set(before).isSubset(of: Set(after)))
    }

    /// ``event(_:_:)`` as stored: version `i` of stream `stream`.
    static func recorded(_ stream: Int, _ i: Int) -> RecordedEvent {
        let event = event(stream, i)
        return RecordedEvent(stream: "s-\(stream)", version: UInt64(i), position: 1_000 + UInt64(i) * 300, id: UUID(), type: event.type,
                             data: event.data, metadata: [], contentType: .json, timestampNanoseconds: 1)
    }

    /// Opening a stream file checks its last block, and the blocks the journal could
    /// still rebuild, by decoding them: blocks compressed against the dictionary must
    /// decode with it there too, or a sound block would be taken for a torn one and cut.
    @Test func openingAFileOfDictionaryBlocksKeepsEveryBlock() throws {
        let dir = TemporaryDirectory()
        let path = dir.child("s.stream")
        var samples: [StreamBlock.RawBlock] = []
        for stream in 0..<40 {
            var builder = StreamBlock.Builder(limit: .max)
            builder.add(Self.recorded(stream, 0))
            samples += builder.finish()
        }
        let dictionary = try #require(CompressionDictionary.sample(of: samples))
        var builder = StreamBlock.Builder(limit: CompactionWriter.dictionaryBlockBytes)
        for v in 0..<100 {
            builder.add(Self.recorded(1, v))
        }
        let blocks = builder.finish()
        let file = try StreamFile.create(at: path, stream: "s")
        try file.append(sources: blocks, compress: true, dictionary: dictionary)
        try file.sync()
        file.close()
        // Every block replayable (replayFrom 0): a block that did not decode would be cut.
        let reopened = try StreamFile.open(at: path, replayFrom: 0, dictionary: dictionary)
        defer { reopened.close() }
        #expect(reopened.nextVersion == 100 && reopened.blockCount == blocks.count && blocks.count > 3)
        let events = try reopened.read(from: 0, direction: .forwards, maxCount: 200)
        #expect(events.map(\.version) == Array(0..<100))
    }

    @Test func damageToTheDictionaryIsNamedAndOneIntactCopyIsEnough() async throws {
        let dir = TemporaryDirectory()
        let path = dir.child("store")
        try await Self.buildSmallCompacted(at: path)
        let before = try await AdminFixture.visible(at: path)
        let file = path + "/streams/dictionary"
        let dictionary = try #require(try StreamFileDictionary.read(in: FilePath(path))?.dictionary)
        let copy = UInt64(CompressionDictionary.copyLength(ofBytes: dictionary.bytes.count))
        let first = UInt64(StreamFileDictionary.magic.count)

        // A block's record of its dictionary: named as that block's damage.
        let relative = StreamNaming.relativePath("s-5").string
        let block = try AdminBlockReuseTests.blocks(of: path + "/" + relative, stream: "s-5")[0]
        #expect(try StreamBlock.parseHeader(block.bytes).get().dictionaryID == dictionary.id)
        try AdminFixture.flip(path + "/" + relative, at: block.offset + 45)
        let named = try MaintenanceSession(directory: path, configuration: .filePerStream())
        let wrong = named.verify().problems
        named.close()
        #expect(wrong.count == 1 && wrong.first?.file == relative && wrong.first?.offset == block.offset
                && wrong.first?.what.contains("another dictionary") == true, "\(wrong)")
        try AdminFixture.flip(path + "/" + relative, at: block.offset + 45)

        try AdminFixture.flip(file, at: first + 100)
        let session = try MaintenanceSession(directory: path, configuration: .filePerStream())
        let problems = session.verify().problems
        session.close()
        #expect(problems.count == 1 && problems.first?.file == "streams/dictionary" && problems.first?.offset == first, "\(problems)")
        #expect(problems.first?.what.contains("the other copy is intact") == true)
        #expect(try await AdminFixture.visible(at: path) == before)

        // Both copies: named, and every block that needs it is named too; reads say where.
        try AdminFixture.flip(file, at: first + copy + 200)
        let both = try MaintenanceSession(directory: path, configuration: .filePerStream())
        let found = both.verify().problems
        both.close()
        #expect(found.filter { $0.file == "streams/dictionary" }.map(\.offset) == [first, first + copy], "\(found.prefix(3))")
        #expect(found.contains { $0.file.hasSuffix(".stream") && $0.what.contains("dictionary") }, "\(found.prefix(3))")
        let store = try await EventStore.open(at: path, configuration: .filePerStream())
        let error = await ringstoreError { for try await _ in store.read(stream: "s-3") {} }
        #expect(error?.code == .corruptData && error?.path?.hasSuffix(".stream") == true, "\(String(describing: error))")
        try await store.close()
        let (status, _, stderr) = try AdminFixture.run(["compact", path])
        #expect(status == 1 && stderr.contains("streams/dictionary"), "\(stderr)")
        // Not a stream file that --skip-damaged could carry over: refused all the same.
        let skipping = try MaintenanceSession(directory: path, configuration: .filePerStream())
        var options = Self.everyStreamGetsTheDictionary
        options.skipDamaged = true
        let refused = await ringstoreError { _ = try await skipping.compact(options: options) }
        skipping.close()
        #expect(refused?.message.contains("streams/dictionary") == true && refused?.message.contains("nothing was changed") == true,
                "\(String(describing: refused))")
        #expect(FileManager.default.fileExists(atPath: file))
    }

    /// `--skip-damaged` carries a damaged stream file over byte for byte; its other
    /// blocks were compressed against the old dictionary, so the new store keeps that one.
    @Test func aDamagedFileCarriedOverKeepsItsDictionary() async throws {
        let dir = TemporaryDirectory()
        let path = dir.child("store")
        try await Self.buildSmallCompacted(at: path)
        let dictionaryFile = try Data(contentsOf: URL(fileURLWithPath: path + "/streams/dictionary"))
        // Damage one block of s-5 (its payload), then add events so that a new sample would differ.
        let relative = StreamNaming.relativePath("s-5").string
        let blocks = try AdminBlockReuseTests.blocks(of: path + "/" + relative, stream: "s-5")
        try AdminFixture.flip(path + "/" + relative, at: blocks[0].offset + UInt64(StreamBlock.headerSize) + 10)
        let store = try await EventStore.open(at: path, configuration: .filePerStream())
        try await store.deleteStream("s-0")
        try await store.close()
        let damaged = try MaintenanceSession(directory: path, configuration: .filePerStream())
        let findings = damaged.verify().problems
        #expect(findings.count == 1 && findings.first?.file == relative, "\(findings)")
        var options = Self.everyStreamGetsTheDictionary
        options.skipDamaged = true
        let summary = try await damaged.compact(options: options)
        #expect(summary.skipped == [relative])
        let after = damaged.verify().problems
        damaged.close()
        #expect(try Data(contentsOf: URL(fileURLWithPath: path + "/streams/dictionary")) == dictionaryFile)
        #expect(after.count == 1 && after.first?.file == relative && after.first?.offset == blocks[0].offset, "\(after)")
    }
}
