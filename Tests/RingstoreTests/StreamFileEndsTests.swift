import Testing
@testable import Ringstore

/// The mover's dense table of stream-file ends: unseen streams and ends of 0
/// read as nil, and it grows only to the largest stream number given an end.
@Suite struct StreamFileEndsTests {
    @Test func holdsEndsByStreamNumberAndZeroMeansUnseen() {
        var ends = StreamFileEnds()
        #expect(ends.isEmpty && ends.span == 0 && ends[7] == nil)
        ends[3] = 0  // bounds nothing: not stored
        #expect(ends.span == 0 && ends[3] == nil)
        ends[5] = 42
        #expect(ends[5] == 42 && ends[4] == nil && ends[6] == nil && ends.span == 6 && !ends.isEmpty)
        ends[2] = 9
        ends[5] = 50
        #expect(ends[2] == 9 && ends[5] == 50 && ends.span == 6)
        ends[5] = nil
        ends[2] = 0
        #expect(ends[5] == nil && ends[2] == nil && ends.isEmpty)
        ends[UInt32(1 << 16)] = 1
        #expect(ends[UInt32(1 << 16)] == 1 && ends.span == (1 << 16) + 1)
    }
}
