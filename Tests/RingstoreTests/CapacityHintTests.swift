import Foundation
import Testing
@testable import Ringstore

@Suite struct CapacityHintTests {
    /// The hint is the power of two that at least half the counted lists
    /// reached, capped at the limit, and 1 before anything was counted.
    @Test(arguments: [
        ([], 1),
        ([1, 1, 1], 1),
        ([18, 18, 18, 17, 20], 16),
        ([5, 6, 7, 9], 4),
        ([1, 1, 1, 1_000_000], 1),  // one hot stream does not raise it (the mean would be 250,000)
        ([1, 1, 2, 1_000_000], 2),
        ([1, 2, 3, 8, 9], 2),
        ([40, 100, 33], 16),  // capped
        ([0, 0, 3], 2),  // empty lists are not counted
    ] as [([Int], Int)])
    func hintsTheMedianPowerOfTwo(lengths: [Int], expected: Int) {
        var hint = CapacityHint(limit: 16)
        for length in lengths { hint.note(length: length) }
        hint.update()
        #expect(hint.capacity == expected)
    }

    /// Each update weighs only what was counted since the last one, and an
    /// update with nothing counted keeps the hint.
    @Test func eachUpdateStartsAfresh() {
        var hint = CapacityHint(limit: 32)
        for _ in 0..<10 { hint.note(length: 20) }
        hint.update()
        #expect(hint.capacity == 16)
        hint.update()
        #expect(hint.capacity == 16)
        for _ in 0..<3 { hint.note(length: 1) }
        hint.update()
        #expect(hint.capacity == 1)
    }

    /// A stream's ring entries emptied at a checkpoint, then filled again:
    /// after the checkpoint the index reserves what the emptied streams held,
    /// and still reads back every position and version it recorded.
    @Test func theIndexReservesWhatStreamsHeldAtTheLastCheckpoint() {
        var index = JournalIndex()
        let names = (0..<8).map { "hint-\($0)" }
        var position: UInt64 = 0
        func appendRound(_ count: Int) {
            for name in names {
                for _ in 0..<count {
                    index.record(stream: name, at: nil, positions: [position], ids: [UUID()])
                    position += 100
                }
            }
        }
        appendRound(10)
        #expect(index.entryCapacity.capacity == 1)
        var released: [[StreamState.RingEntry]] = []
        let touched = names.map { (name: $0, hash: StreamTable.hash($0, seed: index.streams.hashSeed)) }
        index.forgetEntries(before: position, of: touched, released: &released)
        index.forgetEventPositions(before: position)
        #expect(released.count == names.count)
        #expect(index.entryCapacity.capacity == 8)
        let firstAfter = position
        for name in names {
            guard let slot = index.streams.slot(of: name) else { Issue.record("\(name) is gone"); return }
            index.record(at: slot, position: position, id: UUID())
            #expect(index.streams[at: slot].entries.capacity >= 8)
            position += 100
        }
        #expect(index.currentVersion(of: names[0]) == 10)
        #expect(index.position(of: names[0], version: 10) == firstAfter)
        #expect(index.position(of: names[0], version: 9) == nil)  // left the ring with the checkpoint
        #expect(index.eventPositions.first == firstAfter)
    }

    /// Pending positions reserve what the streams written since the list was
    /// last empty held, and still hand back every position in order.
    @Test func pendingStreamsReserveWhatWrittenStreamsHeld() {
        var streams = PendingStreams()
        for number in UInt32(0)..<4 {
            for k in 0..<6 { _ = streams.add(number: number, name: "p\(number)", positions: [UInt64(k)], rawBytes: 1, fullBytes: 1_000) }
        }
        #expect(streams.positionCapacity.capacity == 1)
        for number in UInt32(0)..<4 { streams.remove(number) }
        #expect(streams.isEmpty)
        #expect(streams.positionCapacity.capacity == 4)
        _ = streams.add(number: 2, name: "p2", positions: [7, 8], rawBytes: 1, fullBytes: 1_000)
        _ = streams.add(number: 2, name: "p2", positions: [9], rawBytes: 1, fullBytes: 1_000)
        #expect(streams[2].map { Array($0.positions) } == [7, 8, 9])
    }
}
