import Foundation
import SystemPackage
import Testing
@_spi(PowerLossTesting) @testable import Ringstore

/// The power-loss simulation itself: what survives a cut and what may not.
/// Each test makes files through the storage seam, cuts, and materialises the
/// cut with many seeds to see every outcome the model allows.
@Suite struct PowerLossSimulationTests {
    /// A simulated root with helpers to make files through the seam.
    final class Scene {
        let directory = TemporaryDirectory("powerloss")
        let root: String
        let simulation: PowerLossSimulation

        init() throws {
            root = directory.child("root")
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: false)
            simulation = try PowerLossSimulation.install(root: root)
        }

        deinit { simulation.uninstall() }

        func path(_ name: String) -> FilePath { FilePath(root + "/" + name) }

        func create(_ name: String) throws -> StorageFile { try StorageFile.open(path(name), create: true) }

        func write(_ file: StorageFile, _ bytes: [UInt8], at offset: UInt64 = 0) throws {
            try bytes.withUnsafeBytes { try file.write($0, at: offset) }
        }

        func syncRoot() throws { try StorageDirectory.sync(FilePath(root)) }

        /// Every distinct outcome of `read` over `seeds` materialisations (the simulation stays cut).
        func outcomes<T: Hashable>(seeds: Range<UInt64> = 0..<64, profile: PowerLossProfile? = nil,
                                   _ read: (String) throws -> T) throws -> Set<T> {
            var seen = Set<T>()
            for seed in seeds {
                let target = directory.child("cut-\(UUID().uuidString.prefix(8))")
                _ = try simulation.materialise(into: target, seed: seed, profile: profile)
                seen.insert(try read(target))
                try FileManager.default.removeItem(atPath: target)
            }
            return seen
        }
    }

    static func contents(_ path: String) -> [UInt8]? {
        FileManager.default.contents(atPath: path).map { [UInt8]($0) }
    }

    @Test func aFileWrittenAndSyncedWithItsDirectorySurvivesEveryCut() throws {
        let scene = try Scene()
        let file = try scene.create("a")
        try scene.write(file, Array(repeating: 7, count: 3000))
        try file.syncData()
        try scene.syncRoot()
        file.close()
        let seen = try scene.outcomes { Self.contents($0 + "/a") }
        #expect(seen == [Array(repeating: 7, count: 3000)])
    }

    @Test func unsyncedWritesMayVanishButSyncedBytesStay() throws {
        let scene = try Scene()
        let file = try scene.create("a")
        try scene.write(file, Array(repeating: 1, count: 1024))
        try file.syncData()
        try scene.syncRoot()
        try scene.write(file, Array(repeating: 2, count: 512), at: 1024)
        let seen = try scene.outcomes { Self.contents($0 + "/a") }
        #expect(seen == [Array(repeating: 1, count: 1024), Array(repeating: 1, count: 1024) + Array(repeating: 2, count: 512)])
    }

    @Test func aCreatedFileWithoutADirectorySyncMayVanish() throws {
        let scene = try Scene()
        let file = try scene.create("new")
        try scene.write(file, Array(repeating: 3, count: 100))
        try file.syncData()  // its bytes are durable, its name is not
        let seen = try scene.outcomes { Self.contents($0 + "/new") }
        #expect(seen == [nil, Array(repeating: 3, count: 100)])
    }

    @Test func aRenameWithoutADirectorySyncMayRevert() throws {
        let scene = try Scene()
        let old = try scene.create("target")
        try scene.write(old, Array("old".utf8))
        try old.syncData()
        let new = try scene.create("target.tmp")
        try scene.write(new, Array("new".utf8))
        try new.syncData()
        try scene.syncRoot()
        try StorageDirectory.rename(scene.path("target.tmp"), to: scene.path("target"))
        let unsynced = try scene.outcomes { root in
            [Self.contents(root + "/target").map { String(decoding: $0, as: UTF8.self) } ?? "-",
             Self.contents(root + "/target.tmp").map { String(decoding: $0, as: UTF8.self) } ?? "-"]
        }
        #expect(unsynced == [["old", "new"], ["new", "-"]])
    }

    @Test func aSyncedRenameIsFinal() throws {
        let scene = try Scene()
        let new = try scene.create("target.tmp")
        try scene.write(new, Array("new".utf8))
        try new.syncData()
        try StorageDirectory.rename(scene.path("target.tmp"), to: scene.path("target"))
        try scene.syncRoot()
        let seen = try scene.outcomes { try FileManager.default.contentsOfDirectory(atPath: $0).sorted() }
        #expect(seen == [["target"]])
    }

    @Test func anUnlinkWithoutADirectorySyncMayRevert() throws {
        let scene = try Scene()
        let file = try scene.create("gone")
        try file.syncData()
        try scene.syncRoot()
        file.close()
        StorageDirectory.remove(scene.path("gone"))
        let seen = try scene.outcomes { FileManager.default.fileExists(atPath: $0 + "/gone") }
        #expect(seen == [true, false])
    }

    @Test func writesTearAt512ByteSectorsAndLaterWritesCanOutliveEarlierOnes() throws {
        let scene = try Scene()
        let file = try scene.create("a")
        try scene.write(file, Array(repeating: 0, count: 4096))
        try file.syncData()
        try scene.syncRoot()
        try scene.write(file, Array(repeating: 0xAA, count: 2048), at: 0)  // sectors 0-3
        try scene.write(file, Array(repeating: 0xBB, count: 512), at: 3072)  // sector 6
        let profile = PowerLossProfile(writeSurvival: 0.5, tearing: 0.5, directorySurvival: 1)
        let seen = try scene.outcomes(seeds: 0..<200, profile: profile) { root -> [UInt8] in
            let bytes = Self.contents(root + "/a")!
            // One byte per sector; every sector must be one version, never a mixture.
            return stride(from: 0, to: 4096, by: 512).map { start in
                let sector = bytes[start..<(start + 512)]
                #expect(Set(sector).count == 1, "sector at \(start) holds a mixture")
                return sector.first!
            }
        }
        #expect(seen.contains { $0[0..<4].contains(0xAA) && $0[0..<4].contains(0) }, "a torn write")
        #expect(seen.contains { !$0[0..<4].contains(0xAA) && $0[6] == 0xBB }, "a later write kept, an earlier one lost")
        #expect(seen.contains { $0[0..<4].allSatisfy { $0 == 0xAA } && $0[6] == 0 }, "an earlier write kept, a later one lost")
        #expect(seen.allSatisfy { $0[4] == 0 && $0[5] == 0 && $0[7] == 0 })
    }

    @Test func aSectorKeepsEarlierWritesToItWhenALaterOneReachesTheDisk() throws {
        let scene = try Scene()
        let file = try scene.create("a")
        try scene.write(file, Array(repeating: 0, count: 512))
        try file.syncData()
        try scene.syncRoot()
        try scene.write(file, Array(repeating: 1, count: 100), at: 0)
        try scene.write(file, Array(repeating: 2, count: 100), at: 200)
        let seen = try scene.outcomes(seeds: 0..<100, profile: PowerLossProfile(writeSurvival: 0.5, tearing: 0, directorySurvival: 1)) { root in
            let bytes = Self.contents(root + "/a")!
            return [bytes[0], bytes[200]]
        }
        // The page held the first write when the second went out: never the second alone.
        #expect(seen == [[0, 0], [1, 0], [1, 2]])
    }

    @Test func aFolderWhoseEntryIsNotSyncedTakesItsFilesWithIt() throws {
        let scene = try Scene()
        try StorageDirectory.create(scene.path("sub"))
        let file = try scene.create("sub/f")
        try scene.write(file, [9])
        try file.syncData()
        try StorageDirectory.sync(scene.path("sub"))  // the file's entry is durable, the folder's is not
        let seen = try scene.outcomes { Self.contents($0 + "/sub/f") }
        #expect(seen == [nil, [9]])
        let synced = try Scene()
        try StorageDirectory.create(synced.path("sub"))
        let other = try synced.create("sub/f")
        try synced.write(other, [9])
        try other.syncData()
        try StorageDirectory.sync(synced.path("sub"))
        try synced.syncRoot()
        #expect(try synced.outcomes { Self.contents($0 + "/sub/f") } == [[9]])
    }

    @Test func syncfsCoversEveryFileAndEveryDirectoryEntry() throws {
        let scene = try Scene()
        try StorageDirectory.create(scene.path("sub"))
        let file = try scene.create("sub/f")
        try scene.write(file, Array(repeating: 5, count: 700))
        try StorageDirectory.syncFileSystem(containing: FilePath(scene.root))
        #expect(try scene.outcomes { Self.contents($0 + "/sub/f") } == [Array(repeating: 5, count: 700)])
    }

    @Test func unsyncedTruncationsMayBeUndone() throws {
        let scene = try Scene()
        let file = try scene.create("a")
        try scene.write(file, Array(repeating: 4, count: 1000))
        try file.syncData()
        try scene.syncRoot()
        try file.truncate(to: 10)
        #expect(try scene.outcomes { Self.contents($0 + "/a")?.count } == [10, 1000])
    }

    @Test func afterTheCutNothingChangesAndEverythingFails() throws {
        let scene = try Scene()
        let file = try scene.create("a")
        try scene.write(file, [1])
        scene.simulation.cut(afterOperations: 2)  // the next two operations: the write goes through, the sync is the cut
        try scene.write(file, [2], at: 1)
        #expect(throws: RingstoreError.self) { try file.syncData() }
        #expect(scene.simulation.isCut)
        #expect(scene.simulation.cutOperation?.kind == .syncFile)
        #expect(throws: RingstoreError.self) { try scene.write(file, [3], at: 2) }
        #expect(throws: RingstoreError.self) { try StorageDirectory.create(scene.path("late")) }
        #expect(throws: RingstoreError.self) { _ = try scene.create("late-file") }
        #expect(Self.contents(scene.root + "/a") == [1, 2], "the refused write never reached the file")
        #expect(scene.simulation.refusedAfterCut == 4)
        #expect(scene.simulation.untrackedFiles.isEmpty)
    }

    @Test func filesFoundAtInstallationAreDurableAndOutsidePathsAreLeftAlone() throws {
        let directory = TemporaryDirectory("powerlossinstall")
        let root = directory.child("root")
        try FileManager.default.createDirectory(atPath: root + "/sub", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: root + "/sub/old", contents: Data([1, 2, 3]))
        let simulation = try PowerLossSimulation.install(root: root)
        defer { simulation.uninstall() }
        #expect(throws: RingstoreError.self) { _ = try PowerLossSimulation.install(root: root + "/sub") }
        let outside = try StorageFile.open(FilePath(directory.child("outside")), create: true)
        try [UInt8]([1]).withUnsafeBytes { try outside.write($0, at: 0) }
        try outside.syncData()
        outside.close()
        #expect(simulation.operationCount == 0)
        let target = directory.child("cut")
        let report = try simulation.materialise(into: target, seed: 1)
        #expect(Self.contents(target + "/sub/old") == [1, 2, 3])
        #expect(report.files == 1 && report.directories == 1)
    }

    @Test func theSameSeedGivesTheSameOutcome() throws {
        let scene = try Scene()
        for i in 0..<20 {
            let file = try scene.create("f\(i)")
            try scene.write(file, Array(repeating: UInt8(i), count: 1500))
            file.close()
        }
        let first = try scene.outcomes(seeds: 7..<8) { try FileManager.default.contentsOfDirectory(atPath: $0).sorted() }
        let second = try scene.outcomes(seeds: 7..<8) { try FileManager.default.contentsOfDirectory(atPath: $0).sorted() }
        #expect(first == second)
    }
}
