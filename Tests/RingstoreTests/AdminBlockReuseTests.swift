import Foundation
import Testing
@testable import Ringstore

/// `compact` copies full-size blocks kept whole byte for byte and rebuilds the
/// rest (small blocks, segment entries, blocks cut by metadata): what reads show
/// is unchanged, the new files and their indexes verify clean, the store goes on
/// at the right versions, and damage in a block that would be copied is refused.
@Suite struct AdminBlockReuseTests {
    /// Events of about 3 KB, so a stream of 400 holds about 20 full-size blocks once compacted
    /// ("big" gets an index file from its 64th block, past every stream's threshold).
    static func payload(_ stream: String, _ i: Int) -> EventData {
        EventData(type: "r", json: "{\"s\":\"\(stream)\",\"i\":\(i),\"pad\":\"\(String(repeating: "abcdefghij", count: 300))\(i)\"}")
    }

    /// A store compacted once (its large streams in full-size blocks), then given more
    /// events (small blocks and segment entries) and a `maxCount` that cuts inside a block.
    static func build(at path: String) async throws {
        let store = try await EventStore.open(at: path, configuration: .filePerStream())
        for i in 0..<1_600 { _ = try await store.append(to: "big", events: [payload("big", i)]) }
        for i in 0..<400 { _ = try await store.append(to: "cut", events: [payload("cut", i)]) }
        for i in 0..<200 { _ = try await store.append(to: "small-\(i % 20)", events: [payload("small", i)]) }
        try await store.close()
        let session = try MaintenanceSession(directory: path, configuration: .filePerStream())
        _ = try await session.compact(options: CompactOptions())
        session.close()
        let reopened = try await EventStore.open(at: path, configuration: .filePerStream())
        // The new events stay segment entries: "big" gains a 64 KiB chain, which the mover
        // would otherwise move into its file as a ripe chain or not, depending on timing
        // (its moved blocks, of entry size, are not full-size, and were counted as old blocks).
        reopened.splitter.mover.pause()
        for i in 1_600..<1_650 { _ = try await reopened.append(to: "big", events: [payload("big", i)]) }
        for i in 200..<260 { _ = try await reopened.append(to: "small-\(i % 20)", events: [payload("small", i)]) }
        // 333 kept of 400: the first kept version falls inside a block, which is rebuilt.
        try await reopened.setStreamMetadata(StreamMetadata(maxCount: 333), for: "cut")
        try await reopened.close()
    }

    /// Each block of the stream file at `path`: (offset, its bytes), from the block headers.
    static func blocks(of path: String, stream: String) throws -> [(offset: UInt64, bytes: Data)] {
        let file = try Data(contentsOf: URL(fileURLWithPath: path))
        var offset = Int(StreamFile.headerLength(nameBytes: stream.utf8.count))
        var list: [(UInt64, Data)] = []
        while offset < file.count {
            guard case .success(let header) = StreamBlock.parseHeader(file[offset...]) else {
                Issue.record("block header at \(offset) of \(path) does not parse")
                break
            }
            list.append((UInt64(offset), file[offset..<(offset + header.totalLength)]))
            offset += header.totalLength
        }
        return list
    }

    @Test func fullSizeBlocksAreCopiedAndTheRestRebuilt() async throws {
        let dir = TemporaryDirectory()
        let path = dir.child("store")
        try await Self.build(at: path)
        let bigPath = path + "/" + StreamNaming.relativePath("big").string
        let oldBlocks = try Self.blocks(of: bigPath, stream: "big")
        #expect(oldBlocks.count > 64, "\(oldBlocks.count) blocks")
        let before = try await AdminFixture.visible(at: path)

        let drySession = try MaintenanceSession(directory: path, configuration: .filePerStream())
        let dry = try await drySession.compact(options: CompactOptions(dryRun: true))
        drySession.close()
        let session = try MaintenanceSession(directory: path, configuration: .filePerStream())
        let summary = try await session.compact(options: CompactOptions(acceleration: 4))
        #expect(dry.blocksReused == summary.blocksReused && dry.blocksAfter == summary.blocksAfter)
        // "big": every full block but its last (joined with the new events); "cut": those after the cut.
        #expect(summary.blocksReused >= oldBlocks.count - 2, "\(summary)")
        #expect(summary.blocksAfter > summary.blocksReused, "\(summary)")
        #expect(summary.eventsRemoved == 400 - 333)
        #expect(session.verify().problems.isEmpty, "\(session.verify().problems.prefix(5))")
        session.close()
        #expect(try await AdminFixture.visible(at: path) == before)

        // The copied blocks are the old bytes, at new offsets the index names. (A full-size
        // block right after a small one may be joined to it instead, and where the checkpoints
        // cut the first blocks varies from run to run: most, not all, are copied.)
        let newFile = try Data(contentsOf: URL(fileURLWithPath: bigPath))
        let full = oldBlocks.filter { block in
            guard case .success(let header) = StreamBlock.parseHeader(block.bytes) else { return false }
            let blockBytes = header.dictionary ? CompactionWriter.dictionaryBlockBytes : CompactionWriter.plainBlockBytes
            return header.rawLength >= CompactionWriter.reuseBytes(for: blockBytes)
        }
        let found = full.filter { newFile.range(of: $0.bytes) != nil }.count
        #expect(found > 0 && found * 2 >= full.count, "\(found) of \(full.count) full-size blocks copied")
        #expect(FileManager.default.fileExists(atPath: bigPath + ".idx"))

        // Reads from any version (through the index), and appends at the right versions.
        let store = try await EventStore.open(at: path, configuration: .filePerStream())
        for version in stride(from: UInt64(0), to: 1_650, by: 97) {
            var first: RecordedEvent?
            for try await event in store.read(stream: "big", from: .version(version)) {
                first = event
                break
            }
            #expect(first?.version == version && first.map(text(of:))?.contains("\"i\":\(version),") == true)
        }
        #expect(try await store.append(to: "big", expectedVersion: .exact(1_649), events: [Self.payload("big", 1_650)]).firstVersion == 1_650)
        #expect(try await store.append(to: "cut", expectedVersion: .exact(399), events: [Self.payload("cut", 400)]).firstVersion == 400)
        try await store.close()
        try AdminFixture.expectVerifiesClean(at: path, "after appending to the compacted store")

        // Compacting the result again copies nearly everything.
        let again = try MaintenanceSession(directory: path, configuration: .filePerStream())
        let second = try await again.compact(options: CompactOptions())
        again.close()
        #expect(second.blocksReused >= summary.blocksReused - 2, "\(second)")
        try AdminFixture.expectVerifiesClean(at: path, "after the second compaction")
    }

    @Test func aDamagedBlockThatWouldBeCopiedIsRefusedWithFileAndOffset() async throws {
        let dir = TemporaryDirectory()
        let path = dir.child("store")
        try await Self.build(at: path)
        let relative = StreamNaming.relativePath("big").string
        let block = try Self.blocks(of: path + "/" + relative, stream: "big")[3]
        // A byte in the middle of the stored payload: only the payload checksum can tell.
        let damagedAt = block.offset + UInt64(StreamBlock.headerSize) + UInt64(block.bytes.count - StreamBlock.headerSize) / 2
        try AdminFixture.flip(path + "/" + relative, at: damagedAt)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path + "/" + relative))
        let index = try Data(contentsOf: URL(fileURLWithPath: path + "/global.index"))

        let session = try MaintenanceSession(directory: path, configuration: .filePerStream())
        let error = await ringstoreError { _ = try await session.compact(options: CompactOptions()) }
        session.close()
        let message = error?.message ?? ""
        #expect(message.contains("\(relative), offset \(block.offset)"), "\(message)")
        #expect(message.contains("nothing was changed"), "\(message)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: path + "/" + relative)) == bytes)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path + "/global.index")) == index)
        AdminFixture.expectNoLeftovers([CompactionSwitch.newFolder, "compact.commit"], in: path, "a refused compaction")

        // The same through the tool: exit status 1, the file and offset on stderr.
        let (status, _, stderr) = try AdminFixture.run(["compact", path])
        #expect(status == 1 && stderr.contains("\(relative), offset \(block.offset)"), "\(stderr)")
    }
}
