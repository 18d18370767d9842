import Foundation
import Glibc
import SystemPackage
import Testing
@testable import Ringstore

/// What a compaction does with the page cache and the new files' writeback:
/// each segment's pages are dropped once both walks over it (verification and
/// routing) are done, and the new files' `syncfs` starts early, beside the
/// global index's rewrite, whose failure still fails the compaction.
@Suite struct AdminPageCacheTests {
    /// Pages of the file at `path` in the page cache (`mincore` over a mapping of it).
    static func residentPages(of path: String) throws -> Int {
        let file = try StorageFile.open(FilePath(path))
        defer { file.close() }
        let size = Int(try file.size())
        let base = try file.mapReadOnly(length: size)
        defer { StorageFile.unmap(base, length: size) }
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        var vector = [UInt8](repeating: 0, count: (size + pageSize - 1) / pageSize)
        #expect(mincore(UnsafeMutableRawPointer(mutating: base), size, &vector) == 0)
        return vector.filter { $0 & 1 != 0 }.count
    }

    /// Whether `path` is on a local disk file system whose clean pages `POSIX_FADV_DONTNEED`
    /// drops (not a tmpfs, whose pages are the files themselves, nor a network or
    /// overlay file system that may cache on its own terms). The type is that of the
    /// longest mount point in `/proc/mounts` that holds the path.
    static func dropsCleanPages(_ path: String) -> Bool {
        let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        let mounts = (try? String(contentsOfFile: "/proc/mounts", encoding: .utf8)) ?? ""
        var best: (point: String, type: String)? = nil
        for line in mounts.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count >= 3 else { continue }
            let point = String(fields[1])
            let holds = point == "/" || resolved == point || resolved.hasPrefix(point + "/")
            if holds && point.count >= (best?.point.count ?? 0) { best = (point, String(fields[2])) }
        }
        return ["ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs"].contains(best?.type ?? "")
    }

    @Test func aSegmentsPagesAreDroppedWhenTheSecondWalkIsDone() throws {
        let dir = TemporaryDirectory()
        let path = dir.child("segment")
        let file = try StorageFile.open(FilePath(path), create: true, exclusive: true)
        defer { file.close() }
        let bytes = [UInt8](repeating: 7, count: 1 << 20)
        try bytes.withUnsafeBytes { try file.write($0, at: 0) }
        try file.syncData()  // only clean pages can be dropped
        let other = try StorageFile.open(FilePath(path))
        defer { other.close() }
        let routing = SegmentRouting(folder: FilePath(dir.child("spill")), budget: 1 << 20)
        let cachedBefore = try Self.residentPages(of: path)

        #expect(!routing.walked(segment: 3, file: file), "one walk is done: the other still reads the segment")
        #expect(!routing.walked(segment: 0, file: other), "another segment's walk")
        if Self.dropsCleanPages(path) { #expect(try Self.residentPages(of: path) == cachedBefore) }
        #expect(routing.walked(segment: 3, file: other), "the second walk of segment 3")
        if Self.dropsCleanPages(path) {
            #expect(cachedBefore > 0, "the file was written through the page cache")
            #expect(try Self.residentPages(of: path) == 0, "segment 3's pages are still cached")
        }
        #expect(!routing.walked(segment: 3, file: file), "a segment's pages are dropped once")
    }

    @Test func aFailedEarlySyncOfTheNewFilesFailsTheCompactionAndChangesNothing() async throws {
        let dir = TemporaryDirectory()
        let path = dir.child("store")
        try await AdminFixture.build(at: path, largeStream: true)
        let visible = try await AdminFixture.visible(at: path)
        let before = try AdminOnePassTests.snapshot(path)

        // The first sync of the new folder is the early one (nothing in it is synced file by file).
        let fault = FaultInjection.install(.init(operation: .flush, pathContains: "\(path)/\(CompactionSwitch.newFolder)",
                                                 effect: .fail(.ioError), count: 1))
        let session = try MaintenanceSession(directory: path)
        let error = await ringstoreError { _ = try await session.compact(options: CompactOptions()) }
        session.close()
        FaultInjection.remove(fault)
        #expect(error?.code == .ioError, "\(String(describing: error))")
        #expect(error?.message.contains("syncfs") == true, "\(error?.message ?? "")")
        // Every file as it was but the journal, whose header the compaction's open and close of the store rewrote.
        let after = try AdminOnePassTests.snapshot(path).filter { !$0.key.hasPrefix(CompactionSwitch.newFolder + "/") }
        let changed = Set(before.keys).union(after.keys).filter { before[$0] != after[$0] }.sorted()
        #expect(changed == ["journal.ring"], "\(changed)")
        AdminFixture.expectNoLeftovers([CompactionSwitch.marker, CompactionSwitch.oldFolder], in: path, "a failed early sync")

        // The store is as it was, and compacts once the disk is well again.
        try AdminFixture.expectVerifiesClean(at: path, "after the failed compaction")
        #expect(try await AdminFixture.visible(at: path) == visible)
        let retry = try MaintenanceSession(directory: path)
        _ = try await retry.compact(options: CompactOptions())
        retry.close()
        try AdminFixture.expectVerifiesClean(at: path, "after the compaction")
        #expect(try await AdminFixture.visible(at: path) == visible)
    }
}
