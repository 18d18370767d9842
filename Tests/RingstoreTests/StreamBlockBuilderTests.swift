import Foundation
import Testing
@testable import Ringstore

/// Where ``StreamBlock/Builder`` cuts blocks: before an entry that would pass
/// the limit; an entry larger than the limit alone in its block.
@Suite struct StreamBlockBuilderTests {
    static func event(_ version: UInt64, bytes: Int) -> RecordedEvent {
        RecordedEvent(stream: "s", version: version, position: version * 1000, id: UUID(), type: "T",
                      data: Array(repeating: 7, count: bytes), metadata: [], contentType: .binary, timestampNanoseconds: 0)
    }

    @Test func blocksAreCutBeforeTheLimitAndJoinedWhole() {
        let entry = StreamBlock.entryHeaderSize + 1 + 100  // type "T", 100 data bytes
        var builder = StreamBlock.Builder(limit: 2 * entry)
        for v in 0..<3 { builder.add(Self.event(UInt64(v), bytes: 100)) }
        builder.add(Self.event(3, bytes: 10 * entry))  // larger than the limit: a block of its own
        builder.add(Self.event(4, bytes: 100))
        let blocks = builder.finish()
        #expect(blocks.map(\.count) == [2, 1, 1, 1])
        #expect(blocks.map(\.firstVersion) == [0, 2, 3, 4])
        #expect(blocks.map(\.firstPosition) == [0, 2000, 3000, 4000])

        // Raw blocks join while they fit, as the segment mover joins entries.
        var joined = StreamBlock.Builder(limit: 3 * entry)
        joined.add(blocks[0])
        joined.add(blocks[1])
        #expect(joined.finish().map(\.count) == [3])
        #expect(StreamBlock.Builder().finish().isEmpty)
    }
}
