import Foundation
import SystemPackage
import Testing
@testable import Ringstore

/// A stream file whose header reads as zeros: recreated only if nothing but a
/// header can ever have been written to it; otherwise kept and reported.
@Suite struct DamagedStreamFileTests {
    /// A file of stream "s" at `path` with `count` blocks of `eventsEach` events
    /// (version v at position 100 + 100 v, padded by `padding(v)` bytes); the
    /// blocks' offsets.
    private func writeBlocks(at path: String, count: Int, eventsEach: Int, padding: (Int) -> Int) throws -> [UInt64] {
        let file = try StreamFile.create(at: path, stream: "s")
        defer { file.close() }
        for first in stride(from: 0, to: count * eventsEach, by: eventsEach) {
            try file.append((first..<(first + eventsEach)).map { v in
                RecordedEvent(stream: "s", version: UInt64(v), position: 100 + UInt64(v) * 100, id: UUID(), type: "T",
                              data: Array("event \(v) \(String(repeating: "p", count: padding(v)))".utf8), metadata: [],
                              contentType: .json, timestampNanoseconds: 1)
            }, compress: true)
        }
        return try file.blockOffsetsForTesting()
    }

    private func streamFilePath(_ dir: TemporaryDirectory, _ stream: String) -> String {
        dir.path + "/" + StreamNaming.relativePath(stream).string
    }

    private func overwrite(_ path: String, at offset: UInt64, with bytes: [UInt8]) throws {
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        try handle.seek(toOffset: offset)
        try handle.write(contentsOf: bytes)
        try handle.close()
    }

    /// Events in the file, then its first 16 bytes zeroed (a damaged sector):
    /// the file used to be deleted as "never written" whatever its size, and the
    /// stream silently lost its events. It is damage: the file stays as it was,
    /// and reads of the stream fail with `.corruptData` naming it and offset 0.
    @Test func aZeroedHeaderBeforeEventsIsReportedAndTheFileKept() async throws {
        let dir = TemporaryDirectory()
        do {
            let store = try await EventStore.open(at: dir.path, configuration: .filePerStream())
            try await store.append(to: "kept", events: (0..<20).map { event("e\($0)") })
            try await store.close()  // split and checkpointed: the journal no longer holds them
        }
        try await moveSegmentsIntoStreamFiles(dir.path)
        let path = streamFilePath(dir, "kept")
        let size = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? UInt64)
        #expect(size > StreamFile.headerLength(nameBytes: 4))
        try overwrite(path, at: 0, with: [UInt8](repeating: 0, count: 16))
        let damaged = try Data(contentsOf: URL(fileURLWithPath: path))

        let store = try await EventStore.open(at: dir.path, configuration: .filePerStream())
        let error = await ringstoreError { _ = try await store.read(stream: "kept").collect() }
        #expect(error?.code == .corruptData)
        #expect(error?.path == path)
        #expect(error?.offset == 0)
        #expect(error?.message.contains("first 16 bytes are zero") == true)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == damaged, "the file is kept, unchanged")
        // Other streams are not affected.
        try await store.append(to: "fine", events: [event("x")])
        #expect(try await store.read(stream: "fine").collect().count == 1)
        try await store.close()
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == damaged)
    }

    /// A file no longer than its header with no intact header (created, then the
    /// header write was lost: zeros, or only part of it) held nothing: it is
    /// created again and the stream works.
    @Test(arguments: ["zeros", "torn"])
    func aHeaderOnlyFileWithoutAnIntactHeaderIsCreatedAgain(kind: String) async throws {
        let dir = TemporaryDirectory()
        let stream = String(repeating: "n", count: 600)  // a header of more than one 512-byte sector
        let path = streamFilePath(dir, stream)
        let headerLength = StreamFile.headerLength(nameBytes: stream.utf8.count)
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        switch kind {
        case "zeros":
            #expect(FileManager.default.createFile(atPath: path, contents: Data(count: Int(headerLength))))
        default:
            // The header's first sector written, its second lost.
            let file = try StreamFile.create(at: path, stream: stream)
            file.close()
            try overwrite(path, at: 512, with: [UInt8](repeating: 0, count: Int(headerLength) - 512))
        }
        let store = try await EventStore.open(at: dir.path, configuration: .filePerStream())
        try await store.append(to: stream, events: [event("a"), event("b")])
        #expect(try await store.read(stream: stream).collect().map(text) == ["{\"v\":\"a\"}", "{\"v\":\"b\"}"])
        try await store.close()
        try await moveSegmentsIntoStreamFiles(dir.path)
        let reopened = try StreamFile.open(at: path, replayFrom: 0, expecting: stream)
        #expect(reopened.streamName == stream && reopened.nextVersion == 2)
        reopened.close()
    }

    /// The same rule for the file itself: one byte more than the header, or a
    /// zero header opened without knowing whose file it is, is damage.
    @Test func theRuleAtTheFileLevel() throws {
        let dir = TemporaryDirectory()
        let headerLength = StreamFile.headerLength(nameBytes: 1)
        let path = dir.child("f.stream")
        #expect(FileManager.default.createFile(atPath: path, contents: Data(count: Int(headerLength))))
        #expect(throws: StreamFile.NeverWritten.self) { _ = try StreamFile.open(at: path, replayFrom: 0, expecting: "s") }
        #expect(FileManager.default.createFile(atPath: path, contents: Data(count: Int(headerLength)) + [1]))
        #expect(throws: RingstoreError.self) { _ = try StreamFile.open(at: path, replayFrom: 0, expecting: "s") }
        // Zeros past the header hold nothing either (every write after the header lost).
        #expect(FileManager.default.createFile(atPath: path, contents: Data(count: Int(headerLength) + 4096)))
        #expect(throws: StreamFile.NeverWritten.self) { _ = try StreamFile.open(at: path, replayFrom: 0, expecting: "s") }
        #expect(FileManager.default.createFile(atPath: path, contents: Data(count: Int(headerLength))))
        #expect(throws: RingstoreError.self) { _ = try StreamFile.open(at: path, replayFrom: 0) }
        // Shorter than any header: at most a torn header.
        #expect(FileManager.default.createFile(atPath: path, contents: Data([0x52, 0x53])))
        #expect(throws: StreamFile.NeverWritten.self) { _ = try StreamFile.open(at: path, replayFrom: 0) }
    }

    /// Found by the power-loss rounds: a file created and written since the
    /// last checkpoint, whose header write a power cut lost while a later block
    /// write survived. Every block in it is still in the journal, so it is made
    /// again; the same file with blocks the checkpoint has passed (a durable file
    /// damaged later) is kept and reported.
    @Test func aLostHeaderBeforeTheFirstSyncIsMadeAgainOnlyIfTheJournalHoldsEveryBlock() throws {
        let dir = TemporaryDirectory()
        let path = dir.child("f.stream")
        let file = try StreamFile.create(at: path, stream: "s")
        let events = (0..<20).map { v in
            RecordedEvent(stream: "s", version: UInt64(v), position: 5000 + UInt64(v) * 100, id: UUID(), type: "T",
                          data: Array("event \(v)".utf8), metadata: [], contentType: .json, timestampNanoseconds: 1)
        }
        try file.append(Array(events[0..<10]), compress: true)
        try file.append(Array(events[10..<20]), compress: true)
        file.close()
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        try handle.write(contentsOf: Data(count: Int(StreamFile.headerLength(nameBytes: 1))))
        try handle.close()
        // The checkpoint is before every block: the journal supplies them again.
        #expect(throws: StreamFile.NeverWritten.self) { _ = try StreamFile.open(at: path, replayFrom: 5000, expecting: "s") }
        // The checkpoint has passed the first block: it exists only here.
        let error = try #require(throws: RingstoreError.self) { _ = try StreamFile.open(at: path, replayFrom: 5001, expecting: "s") }
        #expect(error.code == .corruptData && error.path == path && error.offset == 0)
        // The split segments still hold every version (a move from them was cut short).
        #expect(throws: StreamFile.NeverWritten.self) {
            _ = try StreamFile.open(at: path, replayFrom: 1 << 40, segmentsHoldFrom: 0, expecting: "s")
        }
        // The first sector of the first block lost too: no block can be read any more.
        let torn = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        try torn.write(contentsOf: Data(count: 512))
        try torn.close()
        #expect(throws: RingstoreError.self) { _ = try StreamFile.open(at: path, replayFrom: 5000, expecting: "s") }
        // Then only the journal can tell: it holds the stream from version 0.
        #expect(throws: StreamFile.NeverWritten.self) {
            _ = try StreamFile.open(at: path, replayFrom: 5000, expecting: "s", heldElsewhere: { true })
        }
    }

    /// Found by the power-loss rounds: the mover copied a stream's segment
    /// entries into its file (blocks naming journal positions the checkpoint
    /// passed long ago) and the power failed before that file's sync: a middle
    /// block lost, a later one kept. The segments still hold those versions, so
    /// the file is cut at the hole; without them the hole is damage, reported.
    @Test func aHoleLeftByAnUnsyncedMoveIsCutWhenTheSegmentsHoldItsVersions() throws {
        let dir = TemporaryDirectory()
        let path = dir.child("f.stream")
        let offsets = try writeBlocks(at: path, count: 3, eventsEach: 10) { v in v * 7 }
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        try handle.seek(toOffset: offsets[1])
        try handle.write(contentsOf: Data(count: 64))  // the middle block's header lost
        try handle.close()
        let error = try #require(throws: RingstoreError.self) { _ = try StreamFile.open(at: path, replayFrom: 1 << 40, expecting: "s") }
        #expect(error.code == .corruptData && error.offset == offsets[1])
        let cut = try StreamFile.open(at: path, replayFrom: 1 << 40, segmentsHoldFrom: 10, expecting: "s")
        #expect(cut.nextVersion == 10)
        cut.close()
    }

    /// Found by the power-loss rounds: a move's blocks (journal positions the
    /// checkpoint passed long ago) were listed in the file's index when the
    /// power failed before the file's sync, and one of them came back torn.
    /// Opening took the index's word for it, as it may for blocks before the
    /// checkpoint, and kept the torn block: reads of the stream failed on its
    /// checksum although the segments still held its versions. Blocks the
    /// segments hold are checked whatever the index says, the last one lost or
    /// whole.
    @Test(arguments: [false, true])
    func aTornMovedBlockListedInTheIndexIsCutWhenTheSegmentsHoldItsVersions(lastHeaderLost: Bool) throws {
        let dir = TemporaryDirectory()
        let path = dir.child("f.stream")
        // More blocks than any stream's index threshold: the file has its index.
        let offsets = try writeBlocks(at: path, count: 70, eventsEach: 2) { v in 300 + v }
        #expect(offsets.count == 70 && FileManager.default.fileExists(atPath: path + ".idx"))
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        try handle.seek(toOffset: offsets[68] + UInt64(StreamBlock.headerSize) + 8)
        try handle.write(contentsOf: Data(count: 16))  // block 68 (versions 136-137) torn inside its payload
        if lastHeaderLost {
            try handle.seek(toOffset: offsets[69])
            try handle.write(contentsOf: Data(count: StreamBlock.headerSize))
        }
        try handle.close()
        // The journal holds none of it and the segments nothing from version 136 on:
        // the torn block is durable damage, kept and reported.
        let kept = try StreamFile.open(at: path, replayFrom: 1 << 40, segmentsHoldFrom: 138, expecting: "s")
        #expect(kept.nextVersion == (lastHeaderLost ? 138 : 140))
        #expect(throws: RingstoreError.self) { _ = try kept.decodedBlock(containing: 136) }
        kept.close()
        // The segments hold every version from 136 on: cut there, the rest intact.
        let cut = try StreamFile.open(at: path, replayFrom: 1 << 40, segmentsHoldFrom: 136, expecting: "s")
        #expect(cut.nextVersion == 136)
        #expect(try cut.decodedBlock(containing: 135)?.count == 2)
        cut.close()
    }
}
