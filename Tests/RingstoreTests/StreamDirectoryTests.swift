import Foundation
import SystemPackage
import Testing
@testable import Ringstore

@Suite struct StreamDirectoryTests {
    /// A stream never has two open files in one process: a handle evicted while
    /// someone holds it is taken back by the next opener, and one that was let go
    /// is reopened from where it ended, appends and all.
    @Test func anEvictedHandleStillHeldIsTakenBackNotOpenedTwice() throws {
        let dir = TemporaryDirectory()
        let directory = try StreamDirectory(root: FilePath(dir.path), maxOpenFiles: 4)
        let held = try #require(try directory.handle(for: "held", number: nil, create: true))
        let event = RecordedEvent(stream: "held", version: 0, position: 0, id: UUID(), type: "T", data: [1, 2, 3],
                                  metadata: [], contentType: .binary, timestampNanoseconds: 0)
        try held.withFile { try $0.append([event], compress: false) }
        for i in 0..<10 { _ = try directory.handle(for: "other-\(i)", number: nil, create: true) }
        #expect(directory.openFileCount == 4)
        let again = try #require(try directory.handle(for: "held", number: nil, create: false))
        #expect(again === held)

        // Let go of it, evict it again: the next open continues where it ended.
        let next = RecordedEvent(stream: "held", version: 1, position: 8, id: UUID(), type: "T", data: [4],
                                 metadata: [], contentType: .binary, timestampNanoseconds: 0)
        _ = consume again
        _ = consume held
        for i in 10..<20 { _ = try directory.handle(for: "other-\(i)", number: nil, create: true) }
        let reopened = try #require(try directory.handle(for: "held", number: nil, create: false))
        #expect(reopened.withFile { $0.nextVersion } == 1)
        try reopened.withFile { try $0.append([next], compress: false) }
        #expect(try reopened.withFile { try $0.read(from: 0, direction: .forwards, maxCount: 10) }.map(\.data) == [[1, 2, 3], [4]])
    }

    /// A stream found to have no file is remembered as such (by its catalog
    /// number: no file-system lookup the next time), and creating its file
    /// forgets that: once the handle is evicted, a lookup finds the file again.
    @Test func aStreamRememberedWithoutAFileIsFoundOnceItsFileIsCreated() throws {
        let dir = TemporaryDirectory()
        let directory = try StreamDirectory(root: FilePath(dir.path), maxOpenFiles: 4)
        #expect(try directory.handle(for: "late", number: 7, create: false) == nil)
        #expect(try directory.handle(for: "late", number: 7, create: false) == nil, "asked again: still none")
        do {
            let created = try #require(try directory.handle(for: "late", number: 7, create: true))
            let event = RecordedEvent(stream: "late", version: 0, position: 0, id: UUID(), type: "T", data: [7],
                                      metadata: [], contentType: .binary, timestampNanoseconds: 0)
            try created.withFile { try $0.append([event], compress: false) }
        }
        for i in 0..<10 { _ = try directory.handle(for: "other-\(i)", number: nil, create: true) }  // evicts "late"
        let found = try #require(try directory.handle(for: "late", number: 7, create: false))
        #expect(found.withFile { $0.nextVersion } == 1)
    }

    /// The memo answers only for the number it was told: a file that appeared
    /// behind the directory's back (here made by a second directory on the same
    /// folder) stays unseen under the remembered number, is found by a lookup
    /// without one, and a creation without a number forgets every stream.
    @Test func theNoFileMemoIsKeyedByNumberAndForgottenByACreationWithoutOne() throws {
        let dir = TemporaryDirectory()
        let directory = try StreamDirectory(root: FilePath(dir.path), maxOpenFiles: 4)
        #expect(try directory.handle(for: "a", number: 1, create: false) == nil)
        #expect(try directory.handle(for: "b", number: 2, create: false) == nil)
        do {
            let elsewhere = try StreamDirectory(root: FilePath(dir.path), maxOpenFiles: 4)
            _ = try elsewhere.handle(for: "a", number: nil, create: true)
            _ = try elsewhere.handle(for: "b", number: nil, create: true)
        }
        #expect(try directory.handle(for: "a", number: 1, create: false) == nil, "remembered: no lookup")
        #expect(try directory.handle(for: "a", number: nil, create: false) != nil, "without a number the file system is asked")
        _ = try directory.handle(for: "c", number: nil, create: true)
        #expect(try directory.handle(for: "b", number: 2, create: false) != nil, "a creation without a number forgot stream 2")
    }

    /// The bound counts descriptors: a stream with an index file holds two.
    @Test func theOpenFileBoundCountsIndexFilesToo() throws {
        let dir = TemporaryDirectory()
        let directory = try StreamDirectory(root: FilePath(dir.path), maxOpenFiles: 6)
        let big = try #require(try directory.handle(for: "big", number: nil, create: true))
        for version in 0..<UInt64(StreamFile.indexThreshold(for: "big")) {  // one block per append: the last one creates the index
            let event = RecordedEvent(stream: "big", version: version, position: version * 100, id: UUID(), type: "T", data: [1],
                                      metadata: [], contentType: .binary, timestampNanoseconds: 0)
            try big.withFile { try $0.append([event], compress: false) }
        }
        #expect(big.withFile { $0.descriptorCount } == 2)
        #expect(directory.openFileCount == 2)
        for i in 0..<4 { _ = try directory.handle(for: "small-\(i)", number: nil, create: true) }
        #expect(directory.openFileCount == 6, "big (2) and four small files (1 each)")
        _ = try directory.handle(for: "small-4", number: nil, create: true)
        #expect(directory.openFileCount <= 6)
    }

    /// Running out of descriptors (`EMFILE`, whoever used them up) closes half the
    /// cached files and retries, rather than failing the open.
    @Test func runningOutOfDescriptorsShedsCachedFilesAndRetries() throws {
        let dir = TemporaryDirectory()
        let directory = try StreamDirectory(root: FilePath(dir.path), maxOpenFiles: 100)
        for i in 0..<20 { _ = try directory.handle(for: "s-\(i)", number: nil, create: true) }
        #expect(directory.openFileCount == 20)
        let token = FaultInjection.install(.init(operation: .open, pathContains: dir.path, effect: .fail(.tooManyOpenFiles), count: 1))
        defer { FaultInjection.remove(token) }
        let handle = try #require(try directory.handle(for: "new", number: nil, create: true))
        #expect(handle.withFile { $0.nextVersion } == 0)
        #expect(directory.openFileCount <= 11, "half of the 20 closed (without the failure it would be 21), then the new one opened")
    }
}
