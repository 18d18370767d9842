import Testing
@testable import Ringstore

@Suite struct ClosedFileMemoTests {
    func resume(dataEnd: UInt64 = 10_000, nextVersion: UInt64 = 42, blockCount: Int = 3,
                blocks: [(firstVersion: UInt64, offset: UInt64)]? = nil, syncedDataEnd: UInt64 = 9_000,
                syncedIndexEnd: UInt64 = 0, syncFailed: Bool = false, hasIndex: Bool = false) -> StreamFile.ResumePoint {
        StreamFile.ResumePoint(headerLength: 77, dataEnd: dataEnd, nextVersion: nextVersion, blockCount: blockCount,
                               blocks: blocks, syncedDataEnd: syncedDataEnd, syncedIndexEnd: syncedIndexEnd,
                               syncFailed: syncFailed, hasIndex: hasIndex)
    }

    /// Packing into 32 bytes loses nothing a reopen needs.
    @Test func aRememberedResumePointComesBackWhole() throws {
        var memo = ClosedFileMemo()
        let blocks: [(firstVersion: UInt64, offset: UInt64)] = [(0, 77), (20, 3_000), (35, 7_000)]
        memo.remember("a", probe: 2, resume: resume(dataEnd: 5 << 32, nextVersion: 1 << 40, blocks: blocks,
                                                    syncedDataEnd: (5 << 32) - 1_000, syncedIndexEnd: 0, syncFailed: true))
        memo.remember("b", probe: 0, resume: resume(blockCount: 40, syncedIndexEnd: 32 * UInt64(StreamFile.indexEntrySize), hasIndex: true))
        let a = try #require(memo.resumePoint(of: "a"))
        #expect(a.probe == 2)
        #expect(a.resume.headerLength == 77 && a.resume.dataEnd == 5 << 32 && a.resume.nextVersion == 1 << 40)
        #expect(a.resume.blockCount == 3 && a.resume.syncedDataEnd == (5 << 32) - 1_000 && a.resume.syncFailed && !a.resume.hasIndex)
        #expect(a.resume.blocks?.map(\.firstVersion) == [0, 20, 35] && a.resume.blocks?.map(\.offset) == [77, 3_000, 7_000])
        let b = try #require(memo.resumePoint(of: "b"))
        #expect(b.probe == 0 && b.resume.blockCount == 40 && b.resume.blocks == nil && !b.resume.syncFailed && b.resume.hasIndex)
        #expect(b.resume.syncedIndexEnd == 32 * UInt64(StreamFile.indexEntrySize) && b.resume.syncedDataEnd == 9_000)
        #expect(memo.resumePoint(of: "c") == nil)
    }

    /// A handle closed late (a reader held it) must not replace a later end.
    @Test func theLargerEndWins() throws {
        var memo = ClosedFileMemo()
        memo.remember("s", probe: 0, resume: resume(dataEnd: 2_000, nextVersion: 20, syncedDataEnd: 2_000))
        memo.remember("s", probe: 0, resume: resume(dataEnd: 1_000, nextVersion: 10, syncedDataEnd: 1_000))
        #expect(try #require(memo.resumePoint(of: "s")).resume.nextVersion == 20)
        memo.remember("s", probe: 0, resume: resume(dataEnd: 3_000, nextVersion: 30, syncedDataEnd: 3_000))
        #expect(try #require(memo.resumePoint(of: "s")).resume.nextVersion == 30)
    }

    /// Values that do not fit the packed entry are not remembered (the full open
    /// is always correct), and an older entry for the same file is dropped.
    @Test func whatDoesNotFitIsForgotten() {
        var memo = ClosedFileMemo()
        memo.remember("probe", probe: 0, resume: resume())
        memo.remember("probe", probe: 300, resume: resume(dataEnd: 20_000))
        #expect(memo.resumePoint(of: "probe") == nil)
        memo.remember("unsynced", probe: 0, resume: resume(dataEnd: 5 << 32, syncedDataEnd: 0))
        #expect(memo.resumePoint(of: "unsynced") == nil)
        memo.remember("index", probe: 0, resume: resume(syncedIndexEnd: 7))
        #expect(memo.resumePoint(of: "index") == nil)
        #expect(memo.count == 0)
    }

    /// The number of files, and of block lists among them, stays within the bounds.
    @Test func entriesAndBlockListsAreBounded() throws {
        var memo = ClosedFileMemo(capacity: 8, blockListCapacity: 3)
        for i in 0..<20 {
            memo.remember("s\(i)", probe: 0, resume: resume(blocks: [(0, 77), (5, 500), (9, 900)]))
            #expect(memo.resumePoint(of: "s\(i)") != nil)  // the newest is always kept
        }
        #expect(memo.count == 8)
        #expect(memo.blockListCount <= 3)
        #expect(ClosedFileMemo.defaultCapacity == 98_304)  // fills 2^17 hash buckets without doubling them
        // A file closed without a block list drops the one it had.
        var small = ClosedFileMemo(capacity: 8, blockListCapacity: 3)
        small.remember("x", probe: 0, resume: resume(dataEnd: 1_000, blocks: [(0, 77)], syncedDataEnd: 1_000))
        small.remember("x", probe: 0, resume: resume(dataEnd: 2_000, blocks: nil, syncedDataEnd: 2_000))
        #expect(try #require(small.resumePoint(of: "x")).resume.blocks == nil && small.blockListCount == 0)
    }
}
