import Synchronization
import Foundation
import Testing
@_spi(PowerLossTesting) @testable import Ringstore

/// Compaction under simulated power cuts: the cut falls at a chosen file-system
/// operation of the compaction (the rewrite, the syncs, the commit marker, the
/// directory renames of the switch, the clean-up), unsynced changes are kept
/// or lost at random (directory renames included), and the store the cut left
/// must open, verify clean and read exactly as before.
@Suite struct AdminPowerLossTests {
    /// With the default memory budget (one range of streams), and with a tiny one: many
    /// ranges, whose segment entries one pass routes to temporary files under
    /// `compact.new/` (written, read back and unlinked before anything is synced);
    /// and a compaction that writes a dictionary (`streams/dictionary`, which
    /// must come and go with the blocks that need it).
    @Test(arguments: zip([UInt64(64 << 20), 4 << 10, 64 << 20], [false, false, true]))
    func aPowerCutAnywhereInACompactionLeavesTheOldOrTheNewStore(budget: UInt64, dictionary: Bool) async throws {
        let dir = TemporaryDirectory()
        let base = dir.child("base")
        try await AdminFixture.build(at: base)
        var options = dictionary ? StreamFileDictionaryTests.everyStreamGetsTheDictionary : CompactOptions()
        options.memoryBudget = budget
        let before = try await AdminFixture.visible(at: base)

        let counted = try await Self.expectPowerCutsLeaveTheOldOrTheNewStore(base: base, in: dir, options: options, before: before)
        #expect(budget > 1 << 20 || counted.streamRanges > 4, "\(counted)")
        #expect(FileManager.default.fileExists(atPath: dir.child("counting") + "/streams/dictionary") == dictionary)
    }

    /// Compacts a copy of `base` once to count its file-system operations, then compacts
    /// copies with power cuts spread over them (and at each of the switch's renames):
    /// every store a cut leaves verifies clean and reads as `before`. Returns the uncut
    /// compaction's summary.
    static func expectPowerCutsLeaveTheOldOrTheNewStore(base: String, in dir: TemporaryDirectory, options: CompactOptions,
                                                        before: [String], configuration: Configuration = Configuration(),
                                                        sourceLocation: SourceLocation = #_sourceLocation) async throws -> CompactSummary {
        let counting = dir.child("counting")
        try AdminFixture.copy(base, to: counting)
        let counter = try PowerLossSimulation.install(root: counting)
        let session = try MaintenanceSession(directory: counting, configuration: configuration)
        let counted = try await session.compact(options: options)
        session.close()
        let total = counter.operationCount
        counter.uninstall()
        #expect(total > 50, sourceLocation: sourceLocation)

        // Cuts spread over the whole run, then cuts at each of the switch's renames.
        var cuts: [(count: Int, renamesOnly: Bool)] = (0..<16).map { (1 + $0 * (total - 1) / 15, false) }
        cuts += (1...8).map { ($0, true) }
        var seed: UInt64 = 7
        for (round, cut) in cuts.enumerated() {
            let path = dir.child("round-\(round)")
            try AdminFixture.copy(base, to: path)
            let simulation = try PowerLossSimulation.install(root: path)
            if cut.renamesOnly {
                simulation.cut(afterOperations: cut.count) { $0.kind == .rename }
            } else {
                simulation.cut(afterOperations: cut.count)
            }
            do {
                let session = try MaintenanceSession(directory: path, configuration: configuration)
                defer { session.close() }
                _ = try await session.compact(options: options)
            } catch {
                // The cut failed an operation: the compaction stops there.
            }
            let left = dir.child("left-\(round)")
            seed += 1
            let report = try simulation.materialise(into: left, seed: seed)
            simulation.uninstall()
            let what = "round \(round), cut at \(simulation.cutOperation?.description ?? "none") (\(report))"
            try AdminFixture.expectVerifiesClean(at: left, what, sourceLocation: sourceLocation)
            #expect(try await AdminFixture.visible(at: left) == before, "\(what)", sourceLocation: sourceLocation)
            AdminFixture.expectNoLeftovers(["compact.new", "compact.commit"], in: left, what, sourceLocation: sourceLocation)
        }
        return counted
    }

    /// The removal of the old files after the switch (`compact.old/`, one unlink or
    /// `rmdir` at a time) is cut at its first, middle and last step, and once in
    /// the removal of an emptied `compact.new/`: the store is the compacted one
    /// (the marker's removal was durable first), and the next open clears what is left.
    @Test func aPowerCutWhileTheOldFilesAreRemovedLeavesTheNewStore() async throws {
        let dir = TemporaryDirectory()
        let base = dir.child("base")
        try await AdminFixture.build(at: base)
        let before = try await AdminFixture.visible(at: base)
        @Sendable func removesOld(_ operation: PowerLossSimulation.Operation) -> Bool {
            operation.kind.rawValue.hasPrefix("remove") && operation.path.hasPrefix(CompactionSwitch.oldFolder)
        }
        @Sendable func removesNew(_ operation: PowerLossSimulation.Operation) -> Bool {
            operation.kind.rawValue.hasPrefix("remove") && operation.path == CompactionSwitch.newFolder
        }

        // How many removals the clean-up of compact.old makes.
        let counting = dir.child("counting")
        try AdminFixture.copy(base, to: counting)
        let counter = try PowerLossSimulation.install(root: counting)
        let seen = Synchronization.Mutex(0)
        counter.cut(afterOperations: Int.max) { operation in
            if removesOld(operation) { seen.withLock { $0 += 1 } }
            return false
        }
        let session = try MaintenanceSession(directory: counting)
        _ = try await session.compact(options: CompactOptions())
        session.close()
        counter.uninstall()
        let removals = seen.withLock { $0 }
        #expect(removals >= 3, "the removal of compact.old passes through the storage seam")

        var cuts: [(count: Int, matches: @Sendable (PowerLossSimulation.Operation) -> Bool)] =
            [1, max(1, removals / 2), max(1, removals)].map { ($0, removesOld) }
        cuts.append((1, removesNew))
        for (round, cut) in cuts.enumerated() {
            let path = dir.child("round-\(round)")
            try AdminFixture.copy(base, to: path)
            let simulation = try PowerLossSimulation.install(root: path)
            simulation.cut(afterOperations: cut.count, where: cut.matches)
            do {
                let session = try MaintenanceSession(directory: path)
                defer { session.close() }
                _ = try await session.compact(options: CompactOptions())
            } catch {
                // The cut failed an operation: the compaction stops there.
            }
            let cutAt = simulation.cutOperation
            #expect(cutAt != nil, "round \(round): the cut was reached")
            let left = dir.child("left-\(round)")
            let report = try simulation.materialise(into: left, seed: 100 + UInt64(round))
            simulation.uninstall()
            let what = "round \(round), cut at \(cutAt?.description ?? "none") (\(report))"
            #expect(!FileManager.default.fileExists(atPath: "\(left)/\(CompactionSwitch.marker)"), "\(what): the marker's removal was durable")
            let check = try MaintenanceSession(directory: left)
            #expect(check.pendingCompaction?.contains("as after it") ?? true, "\(what): \(check.pendingCompaction ?? "")")
            check.close()
            try AdminFixture.expectVerifiesClean(at: left, what)
            #expect(try await AdminFixture.visible(at: left) == before, "\(what)")
            AdminFixture.expectNoLeftovers([CompactionSwitch.newFolder, CompactionSwitch.oldFolder, CompactionSwitch.marker], in: left, what)
        }
    }
}
