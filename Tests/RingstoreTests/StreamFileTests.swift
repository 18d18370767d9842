import Foundation
import SystemPackage
import Testing
@testable import Ringstore

@Suite struct StreamFileTests {
    func events(_ versions: Range<UInt64>, size: Int = 100, json: Bool = true, repetitive: Bool = true) -> [RecordedEvent] {
        var random = SeededRandom(seed: versions.lowerBound &+ 1)
        return versions.map { v in
            let data = repetitive
                ? Array("{\"version\":\(v),\"pad\":\"\(String(repeating: "x", count: max(0, size - 24)))\"}".utf8)
                : (0..<size).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            return RecordedEvent(stream: "s", version: v, position: 1000 + v * 300, id: UUID(), type: "Type\(v % 3)",
                                 data: data, metadata: v % 2 == 0 ? [1, 2, 3] : [], contentType: json ? .json : .binary,
                                 timestampNanoseconds: 1_700_000_000_000_000_000 + Int64(v))
        }
    }

    func path(_ dir: TemporaryDirectory) -> String { dir.child("s.stream") }

    @Test func roundTripAcrossBlocksAndReopen() throws {
        let dir = TemporaryDirectory()
        let all = events(0..<10) + [RecordedEvent(stream: "s", version: 10, position: 9000, id: UUID(), type: "Empty", data: [],
                                                  metadata: [], contentType: .binary, timestampNanoseconds: 5)]
            + events(11..<12, size: 1 << 20) + events(12..<40, json: false, repetitive: false)
        let file = try StreamFile.create(at: path(dir), stream: "stream with spaces ü")
        try file.append(Array(all[0..<10]), compress: true)
        try file.append(Array(all[10..<12]), compress: false)
        try file.append(Array(all[12...]), compress: true)
        #expect(file.nextVersion == 40)
        func check(_ file: StreamFile) throws {
            #expect(try file.read(from: 0, direction: .forwards, maxCount: 100).map(\.id) == all.map(\.id))
            #expect(try file.read(from: 0, direction: .forwards, maxCount: 100).map { $0.stream } == Array(repeating: "stream with spaces ü", count: 40))
            let read = try file.read(from: 0, direction: .forwards, maxCount: 100)
            for (a, b) in zip(read, all) {
                #expect(a.version == b.version && a.position == b.position && a.type == b.type && a.data == b.data
                        && a.metadata == b.metadata && a.contentType == b.contentType && a.timestampNanoseconds == b.timestampNanoseconds)
            }
            #expect(try file.read(from: 9, direction: .forwards, maxCount: 3).map(\.version) == [9, 10, 11])
            #expect(try file.read(from: 11, direction: .backwards, maxCount: 4).map(\.version) == [11, 10, 9, 8])
            #expect(try file.read(from: 1000, direction: .backwards, maxCount: 2).map(\.version) == [39, 38])
            #expect(try file.read(from: 40, direction: .forwards, maxCount: 2).isEmpty)
        }
        try check(file)
        file.close()
        let reopened = try StreamFile.open(at: path(dir), replayFrom: 0)
        #expect(reopened.streamName == "stream with spaces ü" && reopened.nextVersion == 40)
        try check(reopened)
        reopened.close()
    }

    /// Streams get their index files at different block counts (16 to 63), so
    /// that streams written at one pace do not all create theirs in one checkpoint.
    @Test func indexThresholdsSpreadOverStreams() {
        let thresholds = (0..<10_000).map { StreamFile.indexThreshold(for: "stream-\($0)") }
        #expect(thresholds.allSatisfy { (16...63).contains($0) })
        let counts = Dictionary(grouping: thresholds, by: { $0 }).mapValues(\.count)
        #expect(counts.count == 48, "every threshold is used")
        #expect(counts.values.max()! < 10_000 / 48 * 2, "no threshold takes twice its share")
        // Fixed by the name (a file's index is expected where its name puts the threshold).
        #expect(StreamFile.indexThreshold(for: "s") == 50)
        #expect(StreamFile.indexThreshold(for: "stream-0") == 24)
        #expect(StreamFile.indexThreshold(for: "order-1") == 29)
    }

    /// The splitter reopens files it closed from what it remembers of them; the
    /// block list is then rebuilt only when a read needs it (from the index, or by
    /// hopping headers), crossing the index threshold still writes every entry,
    /// and a file that changed size since falls back to the full open.
    @Test func reopeningFromAResumePointAppendsAndReadsLikeAFullOpen() throws {
        let dir = TemporaryDirectory()
        var file = try StreamFile.create(at: path(dir), stream: "s")
        var version: UInt64 = 0
        for _ in 0..<(StreamFile.indexThreshold(for: "s") + 4) {
            let resume = file.resumePoint
            file.close()
            file = try #require(try StreamFile.reopen(at: path(dir), stream: "s", resume: resume))
            if version == 3 {  // a read in between loads the block list by hopping headers
                #expect(try file.read(from: 0, direction: .forwards, maxCount: 100).map(\.version) == Array(0..<3))
            }
            try file.append(events(version..<(version + 3)), compress: true)
            version += 3
        }
        #expect(StorageDirectory.exists(StreamFile.indexPath(for: path(dir))))
        #expect(try file.read(from: 0, direction: .forwards, maxCount: 1000).map(\.version) == Array(0..<version))
        let resume = file.resumePoint
        file.close()
        let full = try StreamFile.open(at: path(dir), replayFrom: 0)
        #expect(full.nextVersion == version)
        #expect(try full.read(from: version - 1, direction: .backwards, maxCount: 1000).map(\.version) == Array((0..<version).reversed()))
        try full.append(events(version..<(version + 1)), compress: true)
        full.close()
        // The file grew since `resume` was taken: reopening from it is refused.
        #expect(try StreamFile.reopen(at: path(dir), stream: "s", resume: resume) == nil)
    }

    @Test func replayedVersionsAreSkippedAndGapsRejected() throws {
        let dir = TemporaryDirectory()
        let file = try StreamFile.create(at: path(dir), stream: "s")
        let batch = events(0..<5)
        try file.append(batch, compress: true)
        try file.append(batch, compress: true)  // a replay after a crash: nothing is stored twice
        try file.append(events(3..<7), compress: true)  // overlapping: only 5 and 6 are new
        #expect(file.nextVersion == 7)
        #expect(try file.read(from: 0, direction: .forwards, maxCount: 100).map(\.version) == Array(0..<7))
        #expect(throws: RingstoreError.self) { try file.append(events(9..<10), compress: true) }
        #expect(file.nextVersion == 7)
        file.close()
    }

    @Test func compressionIsUsedOnlyWhenItPays() throws {
        let dir = TemporaryDirectory()
        let repetitive = try StreamFile.create(at: dir.child("a.stream"), stream: "a")
        try repetitive.append(events(0..<100, size: 200), compress: true)
        let random = try StreamFile.create(at: dir.child("b.stream"), stream: "b")
        try random.append(events(0..<100, size: 200, repetitive: false), compress: true)
        let rawSize = 100 * (StreamBlock.entryHeaderSize + 200)
        #expect(repetitive.storedBytes < UInt64(rawSize / 3), "repetitive JSON compresses")
        #expect(random.storedBytes > UInt64(rawSize), "random bytes are stored raw, not inflated by LZ4")
        repetitive.close()
        random.close()
    }

    @Test func tornTailIsCutOnlyWhenTheJournalCanRebuildIt() throws {
        let dir = TemporaryDirectory()
        let file = try StreamFile.create(at: path(dir), stream: "s")
        try file.append(events(0..<5), compress: true)
        let sizeBefore = file.storedBytes
        try file.append(events(5..<10), compress: true)
        file.close()
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path(dir)))
        try handle.truncate(atOffset: sizeBefore + 20)  // the second block's write was torn
        try handle.close()
        // Its events are at or after the journal's checkpoint: cut, to be split again.
        let reopened = try StreamFile.open(at: path(dir), replayFrom: 0)
        #expect(reopened.nextVersion == 5)
        try reopened.append(events(5..<10), compress: true)
        #expect(try reopened.read(from: 0, direction: .forwards, maxCount: 100).map(\.version) == Array(0..<10))
        reopened.close()
    }

    /// Overwrites `count` bytes at `offset` of the file at `path` with zeros (a
    /// sector a power cut never wrote) or, with `flip`, inverts them (a torn one).
    func damage(_ path: String, at offset: UInt64, count: Int, flip: Bool = false) throws {
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        try handle.seek(toOffset: offset)
        let bytes = try handle.read(upToCount: count)!
        try handle.seek(toOffset: offset)
        try handle.write(contentsOf: flip ? bytes.map { ~$0 } : [UInt8](repeating: 0, count: count))
        try handle.close()
    }

    /// After a power cut, the blocks written since the file's last sync can come
    /// back lost or torn with later ones whole. All of them are at or after the
    /// journal's checkpoint, so the file is cut at the first bad one (the
    /// splitter writes them again), whatever follows it.
    @Test(arguments: ["header", "body"])
    func aLostOrTornBlockFollowedByAWholeOneIsCutWhenTheJournalCanRebuildIt(damaged part: String) throws {
        let dir = TemporaryDirectory()
        let file = try StreamFile.create(at: path(dir), stream: "s")
        var offsets: [UInt64] = []
        for start in stride(from: UInt64(0), to: 20, by: 5) {
            offsets.append(file.resumePoint.dataEnd)
            try file.append(events(start..<(start + 5)), compress: true)
        }
        file.close()
        let offset = offsets[2] + (part == "header" ? 0 : UInt64(StreamBlock.headerSize) + 3)
        try damage(path(dir), at: offset, count: part == "header" ? StreamBlock.headerSize : 5, flip: part == "body")
        // Block 2 (versions 10-14) is the first the journal still holds.
        let reopened = try StreamFile.open(at: path(dir), replayFrom: events(10..<11)[0].position)
        #expect(reopened.nextVersion == 10)
        #expect(reopened.resumePoint.dataEnd == offsets[2])
        try reopened.append(events(10..<20), compress: true)
        #expect(try reopened.read(from: 0, direction: .forwards, maxCount: 100).map(\.version) == Array(0..<20))
        reopened.close()
    }

    /// The same behind a sidecar index, whose last entry names a whole last
    /// block: opening must not take the index's word for the blocks before it.
    @Test(arguments: ["header", "body"])
    func aBadBlockBehindTheIndexIsFoundWhenTheJournalCanRebuildIt(damaged part: String) throws {
        let dir = TemporaryDirectory()
        let file = try StreamFile.create(at: path(dir), stream: "s")
        var offsets: [UInt64] = []
        for start in stride(from: UInt64(0), to: 240, by: 3) {
            offsets.append(file.resumePoint.dataEnd)
            try file.append(events(start..<(start + 3), size: 40), compress: true)
        }
        file.close()
        #expect(FileManager.default.fileExists(atPath: path(dir) + ".idx"))
        let offset = offsets[75] + (part == "header" ? 0 : UInt64(StreamBlock.headerSize) + 3)
        try damage(path(dir), at: offset, count: part == "header" ? StreamBlock.headerSize : 5, flip: part == "body")
        let reopened = try StreamFile.open(at: path(dir), replayFrom: events(210..<211)[0].position)  // block 70 on
        #expect(reopened.nextVersion == 225)
        #expect(try reopened.read(from: 200, direction: .forwards, maxCount: 100).map(\.version) == Array(200..<225))
        reopened.close()
        let again = try StreamFile.open(at: path(dir), replayFrom: events(210..<211)[0].position)
        #expect(again.nextVersion == 225, "the index was cut to match")
        again.close()
    }

    /// An index file created since the last sync (every entry written at once)
    /// can come back from a power cut with holes before a good last entry, which
    /// is all that opening checks; reads rebuild it from the data file.
    @Test(arguments: [0, 512])
    func anIndexWithHolesIsRebuiltFromTheDataFile(holeAt offset: Int) throws {
        let dir = TemporaryDirectory()
        let file = try StreamFile.create(at: path(dir), stream: "s")
        for start in stride(from: UInt64(0), to: 240, by: 3) { try file.append(events(start..<(start + 3), size: 40), compress: true) }
        file.close()
        try damage(path(dir) + ".idx", at: UInt64(offset), count: 512)
        let reopened = try StreamFile.open(at: path(dir), replayFrom: 1_000_000)
        #expect(reopened.nextVersion == 240)
        #expect(try reopened.read(from: 40, direction: .forwards, maxCount: 3).map(\.version) == [40, 41, 42])
        #expect(try reopened.read(from: 0, direction: .forwards, maxCount: 1000).map(\.version) == Array(0..<240))
        reopened.close()
        let again = try StreamFile.open(at: path(dir), replayFrom: 1_000_000)
        #expect(try again.read(from: 100, direction: .backwards, maxCount: 2).map(\.version) == [100, 99], "the index was rewritten")
        again.close()
    }

    @Test func damagedBlocksTheJournalNoLongerHoldsAreReportedNotCut() throws {
        let dir = TemporaryDirectory()
        let file = try StreamFile.create(at: path(dir), stream: "s")
        var offsets: [UInt64] = []
        for start in stride(from: 0, to: 15, by: 5) {
            offsets.append(file.storedBytes)
            try file.append(events(UInt64(start)..<UInt64(start + 5)), compress: true)
        }
        file.close()
        for target in [1, 2] {  // a middle block, then the last one
            let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path(dir)))
            let flip = offsets[target] + UInt64(StreamBlock.headerSize) + 7
            try handle.seek(toOffset: flip)
            let byte = try handle.read(upToCount: 1)![0]
            try handle.seek(toOffset: flip)
            try handle.write(contentsOf: [byte ^ 0x55])
            try handle.close()
            // The checkpoint is past these events: the journal cannot rebuild them.
            let damaged = try StreamFile.open(at: path(dir), replayFrom: 1_000_000)
            #expect(damaged.nextVersion == 15, "nothing cut")
            #expect(try damaged.read(from: 0, direction: .forwards, maxCount: 5).count == 5)
            do {
                _ = try damaged.read(from: UInt64(target * 5), direction: .forwards, maxCount: 5)
                Issue.record("damaged block \(target) read without error")
            } catch let error as RingstoreError {
                #expect(error.code == .corruptData)
                #expect(error.path == path(dir))
                #expect(error.offset == offsets[target])
            }
            damaged.close()
            // Repair the byte for the next round.
            let handle2 = try FileHandle(forUpdating: URL(fileURLWithPath: path(dir)))
            try handle2.seek(toOffset: flip)
            try handle2.write(contentsOf: [byte])
            try handle2.close()
        }
    }

    @Test func sidecarIndexIsCreatedRebuiltAndFindsVersionsInManyBlocks() throws {
        let dir = TemporaryDirectory()
        let file = try StreamFile.create(at: path(dir), stream: "s")
        for start in stride(from: UInt64(0), to: 3000, by: 3) { try file.append(events(start..<(start + 3), size: 40), compress: true) }
        file.close()
        let indexPath = path(dir) + ".idx"
        #expect(FileManager.default.fileExists(atPath: indexPath))
        #expect(try FileManager.default.attributesOfItem(atPath: indexPath)[.size] as? Int == 1000 * StreamFile.indexEntrySize)
        for damage in ["delete", "truncate"] {
            if damage == "delete" { try FileManager.default.removeItem(atPath: indexPath) } else {
                let handle = try FileHandle(forUpdating: URL(fileURLWithPath: indexPath))
                try handle.truncate(atOffset: 100 * 16 + 5)
                try handle.close()
            }
            let reopened = try StreamFile.open(at: path(dir), replayFrom: 0)
            #expect(reopened.nextVersion == 3000)
            #expect(try reopened.read(from: 1234, direction: .forwards, maxCount: 2).map(\.version) == [1234, 1235])
            #expect(try reopened.read(from: 2999, direction: .backwards, maxCount: 1).map(\.version) == [2999])
            reopened.close()
        }
    }

    @Test func damagedHeaderAndNeverWrittenFiles() throws {
        let dir = TemporaryDirectory()
        let file = try StreamFile.create(at: path(dir), stream: "s")
        try file.append(events(0..<3), compress: true)
        file.close()
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path(dir)))
        try handle.seek(toOffset: 17)
        try handle.write(contentsOf: [0xFF])
        try handle.close()
        do {
            _ = try StreamFile.open(at: path(dir), replayFrom: 0)
            Issue.record("damaged header accepted")
        } catch let error as RingstoreError {
            #expect(error.code == .corruptData && error.path == path(dir))
        }
        _ = FileManager.default.createFile(atPath: dir.child("empty.stream"), contents: Data())
        #expect(throws: StreamFile.NeverWritten.self) { _ = try StreamFile.open(at: dir.child("empty.stream"), replayFrom: 0) }
    }

    @Test func blockDecoderSurvivesArbitraryBytes() {
        var block: [UInt8] = []
        let original = events(0..<20)
        StreamBlock.encode(original[...], compress: true, into: &block)
        var random = SeededRandom(seed: 2024)
        var decoded = 0
        for round in 0..<3000 {
            var bytes = block
            if round % 3 == 0 {
                bytes = (0..<Int(random.next() % 400)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            } else {
                for _ in 0..<(1 + Int(random.next() % 4)) {
                    let i = Int(random.next() % UInt64(bytes.count))
                    bytes[i] = UInt8(truncatingIfNeeded: random.next())
                }
                if round % 5 == 0 { bytes = Array(bytes.prefix(Int(random.next() % UInt64(bytes.count)))) }
            }
            if case .success(let events) = StreamBlock.decode(bytes, stream: "s") {
                decoded += 1
                // Accepted only if what changed carries nothing (the same byte, or a reserved one).
                #expect(events.map(\.id) == original.map(\.id) && events.map(\.data) == original.map(\.data)
                        && events.map(\.metadata) == original.map(\.metadata) && events.map(\.type) == original.map(\.type),
                        "round \(round): damage decoded as other events")
            }
        }
        #expect(decoded < 300, "mutations are caught (\(decoded) of 3000 decoded)")
        if case .success(let events) = StreamBlock.decode(block, stream: "s") { #expect(events.count == 20) } else { Issue.record("clean block rejected") }
    }
}
