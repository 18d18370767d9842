import Foundation
import Testing
@testable import Ringstore

/// `ringstore-admin` in bounded memory: compaction in several passes over the
/// split segments gives the same store as one pass, and verification without a
/// table of positions still catches a global-index entry that names the wrong
/// position under a valid checksum.
@Suite struct AdminBoundedMemoryTests {
    @Test func compactionInManyPassesKeepsEveryVisibleEvent() async throws {
        let dir = TemporaryDirectory()
        let onePass = dir.child("one")
        let manyPasses = dir.child("many")
        try await AdminFixture.build(at: onePass)
        try AdminFixture.copy(onePass, to: manyPasses)
        let before = try await AdminFixture.visible(at: onePass)
        let wide = try MaintenanceSession(directory: onePass)
        let whole = try await wide.compact(options: CompactOptions())
        wide.close()
        let narrow = try MaintenanceSession(directory: manyPasses)
        // A budget far below the segments' size: a pass per few streams.
        let split = try await narrow.compact(options: CompactOptions(memoryBudget: 4 << 10))
        #expect(narrow.verify().problems.isEmpty)
        narrow.close()
        #expect(whole.segmentPasses == 1)
        #expect(split.segmentPasses > 4, "\(split)")
        #expect(split.eventsAfter == whole.eventsAfter && split.blocksAfter == whole.blocksAfter)
        #expect(try await AdminFixture.visible(at: manyPasses) == before)
        #expect(try await AdminFixture.visible(at: onePass) == before)
        let files = try FileManager.default.subpathsOfDirectory(atPath: onePass + "/streams").sorted()
        #expect(try FileManager.default.subpathsOfDirectory(atPath: manyPasses + "/streams").sorted() == files)
        for file in files {
            #expect(FileManager.default.contents(atPath: onePass + "/streams/" + file) == FileManager.default.contents(atPath: manyPasses + "/streams/" + file),
                    "\(file) differs")
        }
        #expect(FileManager.default.contents(atPath: onePass + "/global.index") == FileManager.default.contents(atPath: manyPasses + "/global.index"))
    }

    @Test func aGlobalIndexEntryAtTheWrongPositionWithAValidChecksumIsFound() async throws {
        let dir = TemporaryDirectory()
        let path = dir.child("store")
        try await AdminFixture.build(at: path)
        let file = path + "/" + GlobalIndex.fileName
        var bytes = [UInt8](FileManager.default.contents(atPath: file)!)
        let size = GlobalIndex.entrySize
        // Move one entry's position by one, between its neighbours', so order still holds; re-checksum it.
        var changed: Int? = nil
        for i in 1..<(bytes.count / size - 1) {
            let previous = bytes.withUnsafeBytes { LittleEndian.load(UInt64.self, from: $0, at: (i - 1) * size) }
            let position = bytes.withUnsafeBytes { LittleEndian.load(UInt64.self, from: $0, at: i * size) }
            if position - previous > 1 {
                bytes.withUnsafeMutableBytes { b in
                    LittleEndian.store(position - 1, into: b, at: i * size)
                    LittleEndian.store(CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[(i * size)..<(i * size + 20)])), into: b, at: i * size + 20)
                }
                changed = i
                break
            }
        }
        #expect(changed != nil)
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        let session = try MaintenanceSession(directory: path)
        let report = session.verify()
        session.close()
        let named = report.problems.filter { $0.file == GlobalIndex.fileName && $0.what.contains("positions of stream") }
        #expect(named.count == 1, "\(report.problems)")
    }
}
