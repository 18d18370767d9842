import Foundation
import SystemPackage
import Testing
@testable import Ringstore

/// ``ParallelRemoval``: many files unlinked by several threads; the first
/// failure stops them and is thrown, naming the file.
@Suite struct ParallelRemovalTests {
    @Test func everyFileIsRemoved() throws {
        let dir = TemporaryDirectory()
        let files = (0..<300).map { FilePath(dir.child("f-\($0)")) }
        for file in files { try #require(FileManager.default.createFile(atPath: file.string, contents: Data([1]))) }
        try ParallelRemoval.unlink(files, threads: 8, owner: "test")
        #expect(files.allSatisfy { !FileManager.default.fileExists(atPath: $0.string) })
    }

    @Test func aFileThatCannotBeRemovedStopsTheThreadsAndIsThrown() throws {
        let dir = TemporaryDirectory()
        var files = (0..<50).map { FilePath(dir.child("f-\($0)")) }
        for file in files { try #require(FileManager.default.createFile(atPath: file.string, contents: Data([1]))) }
        // A non-empty folder: `unlink` fails (EISDIR), every time.
        let folder = dir.child("folder")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
        try #require(FileManager.default.createFile(atPath: folder + "/inside", contents: Data([1])))
        files.insert(FilePath(folder), at: 25)
        #expect {
            try ParallelRemoval.unlink(files, threads: 8, owner: "test")
        } throws: { error in
            (error as? RingstoreError).map { "\($0)".contains("folder") } ?? false
        }
        #expect(FileManager.default.fileExists(atPath: folder + "/inside"))
    }
}
