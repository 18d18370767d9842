import Foundation
import SystemPackage
import Testing
@testable import Ringstore

/// What a compaction takes from its verification instead of asking the store
/// again: each stream's file (where it is, where it ends, its size), and the
/// spill's ranges read into one arena reused from range to range.
@Suite struct AdminVerifiedFilesTests {
    @Test func verificationListsEachStreamsFileWithItsEndAndSize() async throws {
        let dir = TemporaryDirectory()
        let path = dir.child("store")
        try await AdminFixture.build(at: path, largeStream: true)
        let session = try MaintenanceSession(directory: path)
        let report = session.verify()
        session.close()
        #expect(report.problems.isEmpty)
        let inventory = report.inventory
        #expect(inventory.fileByNumber.count == inventory.catalogNames)
        let listed = inventory.fileByNumber.compactMap { $0 }
        #expect(listed.count == inventory.streamFiles)
        #expect(listed.count > 0, "the fixture's streams have files")
        let catalog = try StreamCatalog(directory: FilePath(path))
        let names = catalog.allNames()
        for (number, verified) in inventory.fileByNumber.enumerated() {
            guard let verified else { continue }
            let file = "\(path)/\(verified.relative)"
            let size = try FileManager.default.attributesOfItem(atPath: file)[.size] as? UInt64
            #expect(size == verified.bytes, "\(verified.relative)")
            let opened = try StreamFile.open(at: file, replayFrom: .max, expecting: names[number])
            #expect(opened.streamName == names[number])
            #expect(opened.nextVersion == verified.nextVersion, "\(names[number])")
            opened.close()
        }
    }

    @Test func aCompactionFromVerifiedFilesShowsTheSameEvents() async throws {
        let dir = TemporaryDirectory()
        let path = dir.child("store")
        try await AdminFixture.build(at: path, largeStream: true)
        let before = try await AdminFixture.visible(at: path)
        // A small budget: the entries go through the spill, range after range, each into the reused arena.
        let session = try MaintenanceSession(directory: path)
        let summary = try await session.compact(options: CompactOptions(memoryBudget: 4 << 10))
        session.close()
        #expect(summary.streamRanges > 1, "\(summary)")
        #expect(try await AdminFixture.visible(at: path) == before)
        try AdminFixture.expectVerifiesClean(at: path, "after compacting")
    }

    @Test func eachSpilledRangeFillsTheArenaOfTheRangeBefore() throws {
        let dir = TemporaryDirectory()
        let folder = FilePath(dir.child("spill"))
        let spill = try SegmentSpill(folder: folder, streams: 8, maxFiles: 4, budget: 64 << 10)
        for round in 0..<3 {
            for stream in UInt32(0)..<8 {
                let block = [UInt8](repeating: UInt8(stream * 10 + UInt32(round)), count: 100 + Int(stream))
                try block.withUnsafeBytes { try spill.add(stream: stream, segment: 7 + UInt32(round), block: $0) }
            }
        }
        try spill.finish()
        var spare: [UInt8] = []
        var lastBase: UnsafeRawPointer?
        for range in [UInt32(0)..<4, 4..<8] {
            var harvest = try spill.harvest(range, expectedBytes: 3 * 110 * 4, reusing: &spare)
            #expect(spare.isEmpty)
            for stream in range {
                let blocks = harvest.blocks(of: stream)
                #expect(blocks.count == 3)
                for (round, span) in blocks.enumerated() {
                    #expect(span.count == SegmentHarvest.unitPrefix + 100 + Int(stream))
                    let (segment, block) = harvest.arena.withUnsafeBytes { SegmentHarvest.unit($0, span) }
                    #expect(segment == 7 + UInt32(round), "each block comes back with its segment's number")
                    #expect(block.allSatisfy { $0 == UInt8(stream * 10 + UInt32(round)) })
                }
            }
            let base = harvest.arena.withUnsafeBytes { $0.baseAddress.map(UnsafeRawPointer.init) }
            if let lastBase { #expect(base == lastBase, "the second range reuses the first one's memory") }
            lastBase = base
            spare = harvest.takeArena()
            #expect(spare.isEmpty && spare.capacity >= 3 * 100 * 4)
            #expect(harvest.arena.isEmpty && harvest.blocks(of: range.lowerBound).isEmpty)
        }
        try spill.remove()
    }
}
