import Foundation
import Testing
@testable import Ringstore

/// ``Prefetch/arrayStorage(of:)`` reads an array's reference as bits: it must
/// neither change the array nor leave a reference count behind.
@Suite struct PrefetchTests {
    @Test func askingForAnArraysStorageLeavesItUniquelyReferenced() {
        var entries: [StreamState.RingEntry] = []
        Prefetch.arrayStorage(of: &entries)  // the shared empty storage
        entries.reserveCapacity(8)
        entries.append(.init(position: 1, id: .init()))
        let before = entries.withUnsafeBufferPointer { $0.baseAddress }
        for _ in 0..<3 { Prefetch.arrayStorage(of: &entries) }
        // A retain left behind would make this append copy the storage elsewhere.
        entries.append(.init(position: 2, id: .init()))
        #expect(entries.withUnsafeBufferPointer { $0.baseAddress } == before)
        #expect(entries.map(\.position) == [1, 2])
    }

    @Test func theWindowsPrefetchChangesNoAnswer() {
        var window = IdempotencyWindow(capacity: 4)
        let ids = (0..<10).map { _ in UUID() }
        window.prefetch(for: ids[0])  // empty window: asks for nothing
        for (i, id) in ids.enumerated() {
            window.prefetch(for: id)
            window.remember(id, .init(stream: "s", firstVersion: UInt64(i), count: 1))
        }
        #expect(ids[..<6].allSatisfy { window.lookup($0) == nil })
        #expect(ids[6...].enumerated().allSatisfy { window.lookup($1)?.firstVersion == UInt64(6 + $0) })
    }
}
