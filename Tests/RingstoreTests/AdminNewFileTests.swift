import Foundation
import SystemPackage
import Testing
@testable import Ringstore

/// How `compact` writes its new files: a stream file's header goes with its
/// first blocks in one write (``StreamFile/create(at:stream:deferHeader:)``),
/// giving the same bytes as a header written on its own, and the summary's
/// sizes after are counted as written, equal to the files' sizes on disk.
@Suite struct AdminNewFileTests {
    static func events(_ range: Range<Int>) -> [RecordedEvent] {
        range.map { v in
            RecordedEvent(stream: "stream-a", version: UInt64(v), position: 5000 + UInt64(v) * 100, id: UUID(), type: "T",
                          data: Array("event \(v) \(String(repeating: "y", count: v * 37))".utf8), metadata: [],
                          contentType: .json, timestampNanoseconds: 1)
        }
    }

    @Test func aDeferredHeaderIsWrittenWithTheFirstBlocksAsTheSameBytes() throws {
        let dir = TemporaryDirectory()
        let events = Self.events(0..<40)
        var contents: [Data] = []
        for deferred in [false, true] {
            let path = dir.child(deferred ? "deferred.stream" : "plain.stream")
            let file = try StreamFile.create(at: path, stream: "stream-a", deferHeader: deferred)
            // Nothing on disk until the first append when deferred.
            #expect(try Data(contentsOf: URL(fileURLWithPath: path)).count == (deferred ? 0 : Int(file.headerLength)))
            try file.append(Array(events[0..<25]), compress: true)
            try file.append(Array(events[25..<40]), compress: true)
            #expect(file.dataEnd == UInt64(try Data(contentsOf: URL(fileURLWithPath: path)).count))
            file.close()
            contents.append(try Data(contentsOf: URL(fileURLWithPath: path)))
            // It opens and reads back every event.
            let reopened = try StreamFile.open(at: path, replayFrom: .max, expecting: "stream-a")
            #expect(reopened.nextVersion == 40)
            reopened.close()
        }
        #expect(contents[0] == contents[1])
    }

    @Test func theSizesAfterACompactionAreTheNewFilesSizes() async throws {
        let dir = TemporaryDirectory()
        let path = dir.child("store")
        try await AdminFixture.build(at: path, largeStream: true)
        let session = try MaintenanceSession(directory: path)
        let summary = try await session.compact(options: CompactOptions())
        session.close()
        let onDisk = StoreVerifier(directory: FilePath(path)).sizes()
        #expect(summary.rewritableBytesAfter == onDisk.rewritable, "\(summary)")
        #expect(summary.totalBytesAfter == onDisk.total, "\(summary)")
        try AdminFixture.expectVerifiesClean(at: path, "after compacting")
    }
}
