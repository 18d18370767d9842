import Foundation
import Testing
@testable import Ringstore

/// What recovery rebuilds is handed to the writer, not kept beside it.
@Suite struct RecoveredIndexTests {
    /// True if `array`'s storage is shared with another array value: a mutable
    /// access then copies it (copy-on-write), and the storage moves.
    static func isShared<Element>(_ array: inout [Element]) -> Bool {
        let before = array.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) }
        let after = array.withUnsafeMutableBufferPointer { UnsafeRawPointer($0.baseAddress) }
        return before != after
    }

    /// After open, the writer's index is the only copy of what recovery found.
    /// The journal used to keep recovery's outcome, index included, for as long
    /// as the store was open: the writer's first append then copied the whole
    /// index (copy-on-write), and both copies stayed in memory.
    @Test func theRecoveredIndexIsOwnedByTheWriterAlone() async throws {
        let dir = TemporaryDirectory()
        do {
            let store = try await EventStore.open(at: dir.path, configuration: .testing())
            store.splitter.pause()
            for i in 0..<50 { try await store.append(to: "s-\(i % 5)", events: [event("\(i)"), event("\(i)b")]) }
            await store.abandonForTesting()
        }
        // No checkpoint may drop entries from the index (which would copy it anyway) while it is examined.
        try await withFault(.flush, on: dir.path + "/streams/", .fail(.ioError)) { _ in
            let store = try await EventStore.open(at: dir.path, configuration: .testing())
            #expect(store.stats().recoveredEvents == 100)
            let (positionsShared, entriesShared, count) = store.journal.writer.state.withLock { s in
                let slot = s.index.streams.slot(of: "s-0")!
                return (Self.isShared(&s.index.eventPositions),
                        Self.isShared(&s.index.streams[at: slot].entries),
                        s.index.eventPositions.count)
            }
            #expect(count == 100)
            #expect(!positionsShared, "the recovered event positions have a second owner")
            #expect(!entriesShared, "the recovered stream entries have a second owner")
            await store.abandonForTesting()
        }
        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        #expect(try await store.readAll().collect().count == 100)
        try await store.close()
    }
}
