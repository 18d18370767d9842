import Foundation
import Testing
@testable import Ringstore

/// `ringstore-admin` in bounded memory: compaction in many ranges of streams
/// (routed by one pass over the split segments, or one pass per range) gives
/// the same store as one range, and verification without a
/// table of positions still catches a global-index entry that names the wrong
/// position under a valid checksum.
@Suite struct AdminBoundedMemoryTests {
    @Test func compactionInManyRangesKeepsEveryVisibleEvent() async throws {
        let dir = TemporaryDirectory()
        let onePass = dir.child("one")
        let routed = dir.child("routed")
        let manyPasses = dir.child("many")
        try await AdminFixture.build(at: onePass)
        try AdminFixture.copy(onePass, to: routed)
        try AdminFixture.copy(onePass, to: manyPasses)
        let before = try await AdminFixture.visible(at: onePass)
        let wide = try MaintenanceSession(directory: onePass)
        let whole = try await wide.compact(options: CompactOptions())
        wide.close()
        // A budget far below the segments' size: a range per few streams, their entries
        // routed to temporary files by one pass over the segments.
        let spilling = try MaintenanceSession(directory: routed)
        let spilled = try await spilling.compact(options: CompactOptions(memoryBudget: 4 << 10))
        #expect(spilling.verify().problems.isEmpty)
        spilling.close()
        // The same, with routing off: one pass per range.
        let narrow = try MaintenanceSession(directory: manyPasses)
        var options = CompactOptions(memoryBudget: 4 << 10)
        options.spillRanges = 0
        let split = try await narrow.compact(options: options)
        #expect(narrow.verify().problems.isEmpty)
        narrow.close()
        #expect(whole.segmentPasses == 1 && whole.streamRanges == 1)
        #expect(spilled.segmentPasses == 1 && spilled.streamRanges > 4, "\(spilled)")
        #expect(split.segmentPasses > 4, "\(split)")
        #expect(split.eventsAfter == whole.eventsAfter && split.blocksAfter == whole.blocksAfter)
        #expect(spilled.eventsAfter == whole.eventsAfter && spilled.blocksAfter == whole.blocksAfter)
        #expect(try await AdminFixture.visible(at: manyPasses) == before)
        #expect(try await AdminFixture.visible(at: routed) == before)
        #expect(try await AdminFixture.visible(at: onePass) == before)
        #expect(!FileManager.default.fileExists(atPath: routed + "/" + CompactionSwitch.newFolder))
        for other in [manyPasses, routed] { try AdminFixture.expectSameStreamFiles(onePass, other) }
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
