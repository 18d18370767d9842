import Testing
@testable import Ringstore

/// The splitter's per-checkpoint stream lists: each stream once, by catalog number.
@Suite struct NumberedStreamsTests {
    @Test func eachStreamIsListedOnceInOrderOfInsertion() {
        var streams = NumberedStreams()
        #expect(streams.isEmpty)
        for (number, name) in [(5, "e"), (0, "a"), (5, "e"), (700, "far"), (0, "a"), (63, "x"), (64, "y")] {
            streams.insert(number: UInt32(number), name: name)
        }
        #expect(streams.names == ["e", "a", "far", "x", "y"])
        #expect(streams.numbers == [5, 0, 700, 63, 64])
        #expect(streams.contains(700) && streams.contains(63) && !streams.contains(1) && !streams.contains(100_000))
    }

    @Test func takingAllEmptiesTheListsAndTheMembership() {
        var streams = NumberedStreams()
        streams.insert(number: 3, name: "c")
        streams.insert(number: 130, name: "z")
        let taken = streams.takeAll()
        #expect(taken.names == ["c", "z"] && taken.numbers == [3, 130])
        #expect(streams.isEmpty && streams.count == 0 && !streams.contains(3) && !streams.contains(130))
        // After a take, the same streams are new again (the next checkpoint covers them).
        streams.insert(number: 130, name: "z")
        streams.insert(number: 3, name: "c")
        #expect(streams.names == ["z", "c"])
    }
}
