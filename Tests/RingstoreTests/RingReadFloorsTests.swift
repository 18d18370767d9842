import Testing
@testable import Ringstore

@Suite struct RingReadFloorsTests {
    /// Against the plain minimum over the rest of the list, at every index,
    /// for lists shorter than a chunk, of exactly one and of several chunks
    /// (with streams that have no records left, and positions above `end`).
    @Test func floorIsTheLeastFirstPositionOfTheRest() {
        var random = SeededRandom(seed: 7)
        for count in [0, 1, 5, RingReadFloors.chunk, RingReadFloors.chunk + 1, 3 * RingReadFloors.chunk + 17] {
            let end: UInt64 = 1_000_000
            let firsts: [UInt64] = (0..<count).map { i in
                switch random.next() % 10 {
                case 0: .max  // nothing left
                case 1: end + 5
                default: UInt64(i) * 300 + random.next() % 50_000  // about in order, with stragglers
                }
            }
            let floors = RingReadFloors(firstPositions: firsts, end: end)
            for index in 0...count {
                let expected = min(end, firsts[index...].min() ?? end)
                #expect(floors.floor(from: index) { firsts[$0] } == expected, "count \(count), index \(index)")
            }
            #expect(floors.floor(from: count + 3) { firsts[$0] } == end)
        }
    }
}
