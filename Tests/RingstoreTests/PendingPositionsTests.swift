import Testing
@testable import Ringstore

@Suite struct PendingPositionsTests {
    /// The first position inline, the others in the array: appended in runs of
    /// 0, 1 and several, the collection reads back every position in order.
    @Test func holdsEveryPositionInOrder() {
        var positions = PendingPositions()
        #expect(positions.isEmpty && positions.first == nil && positions.last == nil)
        positions.append(contentsOf: [])
        #expect(positions.isEmpty)
        positions.append(contentsOf: [0])  // position 0 is a position, not "none"
        #expect(Array(positions) == [0])
        #expect(positions.first == 0 && positions.last == 0)
        var expected: [UInt64] = [0]
        for run in 1...5 {
            let next = (0..<run).map { UInt64(1_000 * run + $0) }
            positions.append(contentsOf: next.lazy.map { $0 })
            expected += next
            #expect(Array(positions) == expected)
            #expect(positions.count == expected.count)
            #expect(positions.last == expected.last)
        }
    }

    /// A stream filed with one record, then more: `PendingStreams` hands the
    /// positions back in order, and forgets them on removal.
    @Test func pendingStreamsKeepPositionsPerStream() {
        var streams = PendingStreams()
        _ = streams.add(number: 3, name: "a", positions: [10], rawBytes: 100, fullBytes: 1_000)
        _ = streams.add(number: 7, name: "b", positions: [20, 30], rawBytes: 100, fullBytes: 1_000)
        let full = streams.add(number: 3, name: "a", positions: [40, 50], rawBytes: 900, fullBytes: 1_000)
        #expect(full)
        #expect(streams[3].map { Array($0.positions) } == [10, 40, 50])
        #expect(streams[7].map { Array($0.positions) } == [20, 30])
        streams.remove(3)
        #expect(streams[3] == nil)
        #expect(streams.count == 1)
    }

    /// Emptied, a list that held more streams than ``PendingStreams/keptCapacity``
    /// lets go of its room; a smaller one keeps it. Either way it fills again.
    @Test func anEmptiedLargeListLetsGoOfItsRoom() {
        for count in [100, PendingStreams.keptCapacity * 2] {
            var streams = PendingStreams()
            for round in 0..<2 {
                for n in 0..<count { _ = streams.add(number: UInt32(n), name: "s\(n)", positions: [UInt64(n * 8)], rawBytes: 10, fullBytes: 1_000) }
                #expect(streams.count == count && streams.list.capacity >= count)
                for n in (0..<count).reversed() where n % 2 == round { streams.remove(UInt32(n)) }
                for n in 0..<count where n % 2 != round { streams.remove(UInt32(n)) }
                #expect(streams.isEmpty)
                if count > PendingStreams.keptCapacity {
                    #expect(streams.list.capacity == 0, "\(count) streams: room let go of")
                } else {
                    #expect(streams.list.capacity >= count, "\(count) streams: room kept")
                }
            }
        }
    }
}
